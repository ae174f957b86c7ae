"""A plain table as an xlsx workbook, written in streaming mode; text from outside stays text.

openpyxl takes a string that starts with ``=`` for a formula. Every string here is written as a
text cell instead, so a reference or a piece of metadata a partner sent (``=HYPERLINK(…)``,
``+cmd|…``, ``@SUM(…)``, ``-1+2``) is shown as what it is and never evaluated.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet


def text_safe_cell(sheet: WriteOnlyWorksheet, value: object) -> WriteOnlyCell | object:
    """A cell for ``value``: strings always as text cells, other values as they are."""
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def write_table_workbook(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> bytes:
    """One sheet: a bold, frozen header and the rows, streamed."""
    workbook = Workbook(write_only=True)
    sheet: WriteOnlyWorksheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    header = []
    for name in columns:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([text_safe_cell(sheet, v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
