"""A table's rows written through its columns' reused cells (``Sheet.row``, handed to openpyxl
bound already) are byte for byte the rows written with a new cell per value, appended as
openpyxl takes any row (``Sheet.cell`` without a column: a fresh quote-prefixed text cell from
``spreadsheet_text`` for every string, a fresh formatted cell for every number and moment),
whatever the text holds (formula starts, control characters, any Unicode) and whatever the
decimals of a rate."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from clearhouse.domain.netting import LineKind, StatementLine
from clearhouse.domain.records import StatementEntry
from clearhouse.statements.columns import ENTRY_COLUMNS, LINE_COLUMNS
from clearhouse.statements.sheets import Column, PrintedPages, Sheet
from clearhouse.statements.spreadsheet_text import EXCEL_MAX_TEXT, put_text

PAGES = PrintedPages("2030-01/p", "2030-01")
T = TypeVar("T")

texts = st.text(max_size=24) | st.sampled_from(["=1+2", "+1", "-5", "@SUM(A1)", "\t=x", "0042"])
optional_texts = st.none() | texts
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
entries = st.builds(
    StatementEntry,
    entry_id=texts,
    recorded_at=moments,
    occurred_at=st.none() | moments,
    kind=texts,
    partner_id=optional_texts,
    member_id=optional_texts,
    points=st.integers(-(10**12), 10**12),
    contract_version=st.none() | st.integers(1, 99),
    reference=optional_texts,
    reversal_of=optional_texts,
)


lines = st.builds(
    StatementLine,
    contract_version=st.integers(1, 99),
    kind=st.sampled_from(LineKind),
    points=st.integers(-(10**12), 10**12),
    reversed_points=st.integers(0, 10**12),
    quantity=st.integers(-(10**12), 10**12),
    # A rate is shown with as many decimals as it has (``rate_format``): 0 to 6.
    rate=st.integers(0, 6).flatmap(lambda places: st.decimals(0, 10, places=places)),
    amount=st.decimals(-(10**9), 10**9, places=2),
)


def _sheet_bytes(
    write: str, rows: Sequence[T], columns: Sequence[Column[T]] = ENTRY_COLUMNS
) -> dict[str, bytes]:
    """The sheet and the styles of a workbook of ``rows``, each written through the reused
    cells of ``Sheet.row`` or through a new cell per value, appended as openpyxl takes them."""
    workbook = Workbook(write_only=True)
    sheet = Sheet.of_table(workbook, "Entries", columns, pages=PAGES, orientation="landscape")
    for row in rows:
        if write == "reused":
            sheet.row(columns, row)
        else:
            sheet.append(*(sheet.cell(c.value(row), c.number_format) for c in columns))
    sheet.close()
    out = io.BytesIO()
    workbook.save(out)
    with zipfile.ZipFile(out) as written:
        return {name: written.read(name) for name in ("xl/worksheets/sheet1.xml", "xl/styles.xml")}


@settings(max_examples=60, deadline=None)
@given(st.lists(entries, min_size=1, max_size=6))
def test_rows_through_reused_column_cells_are_the_rows_of_a_new_cell_per_value(
    rows: list[StatementEntry],
) -> None:
    assert _sheet_bytes("reused", rows) == _sheet_bytes("new cells", rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(lines, min_size=1, max_size=6))
def test_lines_of_rates_and_money_through_reused_cells_are_those_of_a_new_cell_per_value(
    rows: list[StatementLine],
) -> None:
    assert _sheet_bytes("reused", rows, LINE_COLUMNS) == _sheet_bytes(
        "new cells", rows, LINE_COLUMNS
    )


@given(st.text() | st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_a_text_is_cleaned_as_by_the_search_for_what_xml_cannot_hold(text: str) -> None:
    cell = put_text(WriteOnlyCell(Workbook(write_only=True).create_sheet()), text)
    reference = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text[:EXCEL_MAX_TEXT])
    assert (cell.value, cell.data_type) == (reference, "s")
