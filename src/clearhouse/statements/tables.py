"""A plain table as an xlsx workbook (written in streaming mode) or as CSV; text stays text.

Both forms go through ``spreadsheet_text``: in the workbook every string is a quote-prefixed text
cell, in the CSV a string that a spreadsheet would read as a formula gets a ``'`` in front, so a
member id or a reference a partner sent (``=HYPERLINK(…)``, ``+cmd|…``, ``@SUM(…)``, ``-1+2``)
is shown as what it is and never evaluated. Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clearhouse.statements.spreadsheet_text import neutralise_formula, text_cell, text_safe_cell


def write_table_workbook(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> bytes:
    """One sheet: a bold, frozen header and the rows, streamed."""
    workbook = Workbook(write_only=True)
    sheet: WriteOnlyWorksheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    header = []
    for name in columns:
        cell = text_cell(sheet, name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([text_safe_cell(sheet, v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _csv_value(value: object) -> object:
    return neutralise_formula(value) if isinstance(value, str) else value


def write_table_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The header and the rows as CSV (RFC 4180), formula-like text neutralised.

    Every string is quoted, so a value holding another locale's separator (``x;=1+2`` opened
    where ``;`` separates) stays one field and cannot put a formula at the start of a second.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([_csv_value(name) for name in columns])
    writer.writerows([_csv_value(v) for v in row] for row in rows)
    return buffer.getvalue()
