"""Each table's columns are declared once: the declaration is the header, the width and the
number format of what the workbook holds."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openpyxl
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from clearhouse.statements.columns import (
    CONTRACT_COLUMNS,
    ENTRY_COLUMNS,
    LINE_COLUMNS,
    PARTNER_POINTS_COLUMNS,
    POSITION_COLUMNS,
    VERSION_POINTS_COLUMNS,
)
from clearhouse.statements.sheets import RATE_FORMAT, Column, PrintedPages, Sheet
from tests.statements.test_workbook import (
    coalition_statements,
    entries,
    load,
    partner_statement,
    partners,
    write,
)

ZONE = "Europe/Berlin"


def header_row(sheet: Any, first_header: str) -> int:
    return next(row[0].row for row in sheet.iter_rows() if row[0].value == first_header)


def declared_format(column: Column[Any], value: object) -> str:
    """The format a cell of ``column`` holding ``value`` has: a rate shows the decimals it was
    given (``0.0105``: four), every other figure its column's format."""
    if column.number_format == RATE_FORMAT:
        decimals = len(format(Decimal(str(value)), "f").partition(".")[2])
        return "0." + "0" * decimals if decimals else "0"
    return column.number_format or "General"


def assert_declared(sheet: Any, columns: Sequence[Column[Any]], *, rows_at_least: int = 1) -> None:
    """Header, width, alignment and format of each column of the table in ``sheet`` as
    declared; the table ends at a blank row, its Total, or a total line under it (a label in
    column A and nothing in B)."""
    top = header_row(sheet, columns[0].heading("EUR", ZONE))
    header = [cell.value for cell in sheet[top]][: len(columns)]
    assert header == [column.heading("EUR", ZONE) for column in columns]
    body = []
    for row in sheet.iter_rows(min_row=top + 1, max_col=len(columns)):
        if row[0].value in (None, "Total") or row[1].value is None:
            break
        body.append(row)
    assert len(body) >= rows_at_least, sheet.title
    for index, column in enumerate(columns):
        letter = get_column_letter(index + 1)
        assert sheet.column_dimensions[letter].width == column.width, (sheet.title, letter)
        heading = sheet[top][index]
        assert heading.alignment.horizontal == column.alignment, heading
        for cell in (row[index] for row in body if row[index].value is not None):
            assert cell.number_format == declared_format(column, cell.value), cell.coordinate


async def test_every_table_of_a_partners_workbook_is_as_its_columns_declare() -> None:
    workbook = load(await write(partner_statement(partners()[0]), rows=entries(6)))

    assert_declared(workbook["Summary"], LINE_COLUMNS, rows_at_least=5)
    assert_declared(workbook["Entries"], ENTRY_COLUMNS, rows_at_least=6)
    assert_declared(workbook["Reconciliation"], VERSION_POINTS_COLUMNS, rows_at_least=2)
    assert_declared(workbook["Contract"], CONTRACT_COLUMNS, rows_at_least=2)


async def test_every_table_of_the_coalitions_workbook_is_as_its_columns_declare() -> None:
    statement, others = coalition_statements()
    workbook = load(await write(statement, others, entries(4, partner_ids=["p-beta", None])))

    assert_declared(workbook["Summary"], POSITION_COLUMNS, rows_at_least=3)
    assert_declared(workbook["Reconciliation"], PARTNER_POINTS_COLUMNS, rows_at_least=3)
    assert_declared(workbook["Contract"], CONTRACT_COLUMNS, rows_at_least=4)


def test_a_declared_column_makes_its_header_width_and_cells() -> None:
    columns: tuple[Column[dict[str, Any]], ...] = (
        Column("Name", 21, None, lambda row: row["name"]),
        Column("Paid ({currency})", 13.5, "#,##0.00", lambda row: row["paid"]),
        Column("At (UTC)", 19, "yyyy-mm-dd hh:mm", lambda row: row["at"]),
        Column("Count", 7, None, lambda row: row["count"]),
    )
    rows = [
        {"name": "=1+2", "paid": Decimal("-3.10"), "at": datetime(2026, 11, 2, 9, tzinfo=UTC)},
        {"name": None, "paid": None, "at": None},
    ]
    workbook = Workbook(write_only=True)
    pages = PrintedPages("2026-11/p-alpha", "2026-11")
    sheet = Sheet.of_table(workbook, "Table", columns, pages=pages, orientation="portrait")
    sheet.table_heading(columns, "CHF")
    sheet.rows_of(columns, [{**row, "count": number} for number, row in enumerate(rows, 41)])
    sheet.close()
    buffer = io.BytesIO()
    workbook.save(buffer)
    read = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))["Table"]

    assert [c.value for c in read[1]] == ["Name", "Paid (CHF)", "At (UTC)", "Count"]
    assert all(c.font.b for c in read[1])
    assert [read.column_dimensions[x].width for x in "ABCD"] == [21, 13.5, 19, 7]
    name, paid, at, count = read[2]
    assert (name.value, name.data_type, name.quotePrefix) == ("=1+2", "s", True)
    assert (paid.value, paid.number_format) == (-3.1, "#,##0.00")
    assert (at.value, at.number_format) == (datetime(2026, 11, 2, 9), "yyyy-mm-dd hh:mm")  # noqa: DTZ001
    assert (count.value, count.number_format) == (41, "General")
    assert [c.value for c in read[3]] == [None, None, None, 42]
