"""Text from outside, written so that a spreadsheet shows it as text and never runs it.

Ids, references and names come from partners. A spreadsheet takes a cell that starts with ``=``,
``+``, ``-`` or ``@`` for a formula (``=HYPERLINK(…)``, ``=cmd|' /C calc'!A0``), and may strip a
leading tab or carriage return to find such a start behind it (OWASP, "CSV Injection"). This
module is the one place that rule lives, in the two forms the exports need:

- **CSV** has no types, so such a value gets a single quote in front (``neutralise_formula``):
  the spreadsheet shows ``'=1+2`` as text. Every other value is written as it is.
- **xlsx** has types: every string is written as a text cell (``text_cell``), which is never
  evaluated, whatever it starts with, and with the quote prefix set (the ``quotePrefix`` of its
  cell style, what Excel sets when someone types ``'=1+2``). Someone who edits a cell and
  presses Enter has it read again as if typed; with the prefix it stays text. Every text cell
  has it, not only those that start like a formula: an edit would turn ``0042`` into the number
  42 or ``2026-11`` into a date, and which starts make a formula differs between spreadsheets
  and locales. The value itself is unchanged (no ``'`` is added), so the workbook shows exactly
  what the signed statement says.

Numbers are never touched: ``-5`` written as a number stays the number -5.
"""

from __future__ import annotations

from typing import Final

from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

EXCEL_MAX_TEXT: Final = 32_767
"""Characters a cell holds at most; openpyxl cuts a longer text there too."""

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a text as a formula (OWASP)."""


def starts_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


def neutralise_formula(text: str) -> str:
    """``text`` with a ``'`` in front if a spreadsheet would read it as a formula, else as is."""
    return f"'{text}" if starts_like_formula(text) else text


def quote_prefixed_cell(sheet: WriteOnlyWorksheet) -> Cell:
    """An empty cell of ``sheet`` with the quote prefix set, to hold text (``put_text``)."""
    cell = WriteOnlyCell(sheet)
    cell.quotePrefix = True
    return cell


def put_text(cell: Cell, text: str) -> Cell:
    """``text`` into ``cell`` as a string, never a formula; characters XML cannot hold (control
    characters) become U+FFFD."""
    text = text[:EXCEL_MAX_TEXT]
    # A printable text holds none of them; only the others are searched (most are printable).
    if not text.isprintable() and ILLEGAL_CHARACTERS_RE.search(text) is not None:
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    # Set as openpyxl's value setter would for a string, without its type inference: that
    # would take a leading "=" for a formula, and it is a good part of an Entries row's time.
    cell._value = text
    cell.data_type = "s"
    return cell


def text_cell(sheet: WriteOnlyWorksheet, text: str) -> Cell:
    """``text`` as a quote-prefixed text cell of ``sheet``, whatever it starts with."""
    return put_text(quote_prefixed_cell(sheet), text)


def text_safe_cell(sheet: WriteOnlyWorksheet, value: object) -> Cell | object:
    """A cell for ``value``: a string as a text cell (``text_cell``), other values as they are."""
    return text_cell(sheet, value) if isinstance(value, str) else value
