"""A table's rows written through its columns' reused cells (``Sheet.row``) are byte for byte
the rows written with a new cell per value (``Sheet.cell`` without a column: a fresh
quote-prefixed text cell from ``spreadsheet_text`` for every string, a fresh formatted cell for
every number and moment), whatever the text holds: formula starts, control characters, any
Unicode."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from clearhouse.domain.records import StatementEntry
from clearhouse.statements.columns import ENTRY_COLUMNS
from clearhouse.statements.sheets import PrintedPages, Sheet
from clearhouse.statements.spreadsheet_text import EXCEL_MAX_TEXT, put_text

PAGES = PrintedPages("2030-01/p", "2030-01")

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


def _sheet_bytes(write: str, rows: list[StatementEntry]) -> dict[str, bytes]:
    workbook = Workbook(write_only=True)
    sheet = Sheet.of_table(workbook, "Entries", ENTRY_COLUMNS, pages=PAGES, orientation="landscape")
    for entry in rows:
        if write == "reused":
            sheet.row(ENTRY_COLUMNS, entry)
        else:
            sheet.append(*(sheet.cell(c.value(entry), c.number_format) for c in ENTRY_COLUMNS))
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


@given(st.text() | st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_a_text_is_cleaned_as_by_the_search_for_what_xml_cannot_hold(text: str) -> None:
    cell = put_text(WriteOnlyCell(Workbook(write_only=True).create_sheet()), text)
    reference = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text[:EXCEL_MAX_TEXT])
    assert (cell.value, cell.data_type) == (reference, "s")
