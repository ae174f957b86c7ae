"""Writing the sheets of a statement workbook: columns declared once, cells typed by value.

A table is a sequence of ``Column``: its header, its width, its number format and how to take
its value from a row. The same declaration writes the header row, sets the column widths and
makes every cell, so a column cannot get a header without a value or a value without its format.
A value becomes its cell by its type, in one place (``Sheet.cell``): a string is a quote-prefixed
text cell (``spreadsheet_text``), never a formula; a moment is a naive UTC date; a number takes
the column's number format, or none when the column has none; ``None`` is an empty cell.

Sheets are write-only (openpyxl): a row is written out as it is appended, so ``Sheet.row``
reuses one styled cell per column and kind instead of a new one per value (``_ColumnCell``: a
cell that also spares openpyxl's per-value work on it), and hands the row's cells to openpyxl
bound already (``_TableRow``); a property test holds the rows it writes byte for byte against a
new cell per value, appended as openpyxl takes any row.

Every sheet prints the same way, set where it is made (``Sheet.__init__``): on A4 in its
orientation, one page wide and as many pages tall as it needs, each page headed with the
statement and its period (``PrintedPages``) and numbered "Page n of m"; a table that runs over
many pages (Entries) repeats its header row on each. A header cell is aligned as its column's
numbers are (right) or its text (left), and wraps, so a narrow column of figures keeps a long
header readable. Text longer than its column (a note, a hash) is merged across the columns it
may take and wrapped, its row made as tall as its lines: spreadsheets do not grow a row for
wrapped text in a file they open, and text that overflows its column widens the printed page.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import zip_longest
from typing import Any, Final, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clearhouse.statements.spreadsheet_text import put_text, text_cell

MONEY_FORMAT: Final = "#,##0.00_);(#,##0.00)"
"""Money as accountants read it: two decimals, a negative amount in brackets, (12.00), not
-12.00; the others leave the bracket's width free, so that the decimals of a column line up."""
RATE_FORMAT: Final = "0.000000"
"""A rate column: each rate is shown with the decimals its contract gives it (``rate_format``)."""
POINTS_FORMAT: Final = "#,##0"
VERSION_FORMAT: Final = "0"
"""A contract version: a plain number, right-aligned like the figures beside it."""
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT: Final = "yyyy-mm-dd"
SHARE_FORMAT: Final = "0.00%"
"""A share as a number (0.25), shown as a percentage (25.00%)."""

A4: Final = 9
"""The paper size code of A4 in a spreadsheet's page setup."""
LINE_HEIGHT: Final = 15.0
"""Points of one line of 11-point text in a row."""

FONT_NAME: Final = "Calibri"
"""The workbook's own font, named on every font set here: a bold font without a name prints
in another family in LibreOffice."""
_BOLD: Final = Font(name=FONT_NAME, bold=True)
_TITLE: Final = Font(name=FONT_NAME, bold=True, size=14)
_WRAP_LEFT: Final = Alignment(horizontal="left", vertical="top", wrap_text=True)
_LEFT: Final = Alignment(horizontal="left", vertical="top")
_THIN: Final = Side(style="thin")
_HEADER_RULE: Final = Border(bottom=_THIN)
_TOTAL_RULE: Final = Border(top=_THIN)
_NET_RULE: Final = Border(top=_THIN, bottom=Side(style="double"))

Orientation = Literal["portrait", "landscape"]

PAGE_NUMBER: Final = "Page &P of &N"
"""The footer's page number, in the spreadsheet's header and footer codes."""
SHEET_NAME: Final = "&A"

Row = TypeVar("Row", contravariant=True)


@dataclass(frozen=True, slots=True)
class Column(Generic[Row]):
    """One column of a table: what its header says, how wide it is, how its numbers show,
    and its value in a row (a string, a number, a moment or ``None``)."""

    header: str
    """The header; ``{currency}`` in it is replaced by the statement's currency, ``{zone}`` by
    the coalition's time zone."""
    width: float
    number_format: str | None
    """The format of its numbers and moments; ``None``: as the spreadsheet shows them."""
    value: Callable[[Row], object]
    indent: int = 0
    """Characters of space before its text: a column of words right of a column of figures
    keeps apart from them."""
    align: Literal["left", "right"] | None = None
    """How its header is aligned, when not as its number format says (``alignment``)."""

    def heading(self, currency: str, zone: str = "") -> str:
        return self.header.format(currency=currency, zone=zone)

    @property
    def alignment(self) -> Literal["left", "right"]:
        """Figures (a column with a number format) line up on the right, text on the left."""
        if self.align is not None:
            return self.align
        return "left" if self.number_format is None else "right"


def rate_format(rate: Decimal) -> str:
    """The format that shows ``rate`` with exactly the decimals it was given: ``0.0100`` stays
    0.0100 and ``0.012345`` 0.012345, as the contract and the signed statement write them."""
    exponent = rate.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return "0" if places == 0 else "0." + "0" * places


def lines_of(text: str, width: float) -> int:
    """About how many lines ``text`` takes wrapped at its spaces in ``width`` characters (each
    paragraph at least one); generous, so that no line is cut off in a font a little wider."""
    per_line = max(1, int(width * 0.9))
    return sum(max(1, len(textwrap.wrap(part, per_line))) for part in text.split("\n"))


def naive_utc(moment: datetime) -> datetime:
    """Excel has no time zones: the moment in UTC, without its zone (naive means UTC)."""
    if moment.tzinfo is None:
        return moment
    if moment.tzinfo is UTC:  # as the database hands moments over
        return moment.replace(tzinfo=None)
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_moment(text: str) -> datetime:
    """A statement's RFC 3339 ``…Z`` timestamp as a naive UTC datetime."""
    return naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def local_moment(text: str, zone: ZoneInfo) -> datetime:
    """A statement's RFC 3339 timestamp as the coalition's clocks showed it (naive, in
    ``zone``): beside the UTC time, the one its people read."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(zone).replace(tzinfo=None)


class _ColumnCell(Cell):  # type: ignore[misc]  # openpyxl has no types
    """The one cell of a table column (``Sheet.row``), written again for every row.

    openpyxl would look its style up among the workbook's (hashing it) for every value; the
    style of a column's cell is set before its first row and never after, so its index is
    looked up once. Its column is set when it is made; each row gives it its value and its row
    number (``_TableRow``). What is written is the same (a property test holds it against a new
    cell per value)."""

    __slots__ = ("_style_index",)

    def __init__(self, sheet: WriteOnlyWorksheet, column: int) -> None:
        super().__init__(sheet, row=1, column=column)
        self._style_index: int | None = None

    @property
    def style_id(self) -> int:
        if self._style_index is None:
            self._style_index = int(super().style_id)
        return self._style_index


class _TableRow(list[Any]):
    """The values of a table row as ``Sheet.row`` makes them: ``None``, a plain value, or its
    column's ``_ColumnCell`` with the value bound and the column set."""

    __slots__ = ()


def _table_rows(sheet: WriteOnlyWorksheet) -> Callable[[Any, int], Iterator[Cell]]:
    """``sheet``'s conversion of an appended row into cells, with a way of its own for a
    ``_TableRow``: openpyxl's first binds every value to a cell of its own, so that a cell given
    as the value fails, is caught and is taken as it is, and after each styled cell it makes a
    new one; a table row's cells are bound already and only take their row number. What is
    written is the same (the property test of ``Sheet.row`` holds it)."""
    standard = sheet._values_to_row

    def values_to_row(values: Any, row_idx: int) -> Iterator[Cell]:
        if type(values) is _TableRow:
            return _table_cells(sheet, values, row_idx)
        return standard(values, row_idx)  # type: ignore[no-any-return]

    return values_to_row


def _table_cells(sheet: WriteOnlyWorksheet, values: _TableRow, row_idx: int) -> Iterator[Cell]:
    for column, value in enumerate(values, 1):
        if value is None:
            continue
        if type(value) is _ColumnCell:
            value.row = row_idx
            yield value
        else:
            cell = WriteOnlyCell(sheet, value)
            cell.column, cell.row = column, row_idx
            yield cell


@dataclass(frozen=True, slots=True)
class PrintedPages:
    """What every printed page of a statement's sheets is headed with."""

    statement_id: str
    period: str

    @property
    def title(self) -> str:
        """``Settlement statement 2026-11/p-alpha``: also the workbook's title."""
        return f"Settlement statement {self.statement_id}"


def _header_text(text: str) -> str:
    """``text`` as a header or footer shows it: ``&`` starts a code there, ``&&`` is an ``&``."""
    return text.replace("&", "&&")


class Sheet:
    """A write-only sheet and the cells it is written with."""

    def __init__(
        self,
        workbook: Any,
        title: str,
        widths: Sequence[float],
        *,
        pages: PrintedPages,
        orientation: Orientation,
        header_repeats: bool = False,
        freeze: str = "A2",
    ) -> None:
        """``header_repeats``: row 1 is printed at the top of every page."""
        self.sheet: WriteOnlyWorksheet = workbook.create_sheet(title)
        self.sheet._values_to_row = _table_rows(self.sheet)
        # These are written before the first row in write-only mode, so they are set first.
        self.sheet.freeze_panes = freeze
        self.widths = list(widths)
        for index, width in enumerate(widths, 1):
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self._print_setup(pages, orientation, header_repeats)
        self.rows = 0
        self._reused_cells: dict[tuple[int, str | None], Cell] = {}

    def _print_setup(
        self, pages: PrintedPages, orientation: Orientation, header_repeats: bool
    ) -> None:
        sheet = self.sheet
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
        sheet.page_setup.orientation = orientation
        sheet.page_setup.paperSize = A4
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0  # as many pages tall as the rows need
        if header_repeats:
            sheet.print_title_rows = "1:1"
        sheet.oddHeader.left.text = _header_text(pages.title)
        sheet.oddHeader.right.text = _header_text(f"Period {pages.period}")
        sheet.oddFooter.left.text = SHEET_NAME
        sheet.oddFooter.right.text = PAGE_NUMBER

    @classmethod
    def of_table(
        cls,
        workbook: Any,
        title: str,
        columns: Sequence[Column[Any]],
        *,
        pages: PrintedPages,
        orientation: Orientation,
        header_repeats: bool = False,
    ) -> Sheet:
        """A sheet whose column widths are those of ``columns``."""
        widths = [column.width for column in columns]
        return cls(
            workbook,
            title,
            widths,
            pages=pages,
            orientation=orientation,
            header_repeats=header_repeats,
        )

    @classmethod
    def of_tables(
        cls,
        workbook: Any,
        title: str,
        *tables: Sequence[Column[Any]],
        pages: PrintedPages,
        orientation: Orientation,
    ) -> Sheet:
        """A sheet of several tables, one below the other: each column as wide as the widest
        of the tables' columns there."""
        widths = zip_longest(*([column.width for column in table] for table in tables))
        return cls(
            workbook,
            title,
            [max(w for w in at if w is not None) for at in widths],
            pages=pages,
            orientation=orientation,
        )

    def append(self, *values: object) -> None:
        self._write(list(values))

    def _write(self, row: list[Any]) -> None:
        """``row`` appended to the sheet, and counted."""
        self.sheet.append(row)
        self.rows += 1

    def blank(self) -> None:
        self.append()

    def text(self, value: str | None) -> Any:
        """A string as a quote-prefixed text cell, never a formula (``spreadsheet_text``)."""
        return None if value is None else text_cell(self.sheet, value)

    def bold(self, value: str) -> Any:
        cell = self.text(value)
        cell.font = _BOLD
        return cell

    def total_row(self, columns: Sequence[Column[Any]], total: object) -> None:
        """The Total row under a table: ``total``'s cells, under a bold label in column A."""
        cells = (self.cell(column.value(total), column.number_format) for column in columns[1:])
        self.append(self.bold("Total"), *cells)

    def heading(self, *values: str) -> None:
        self.append(*(self.bold(v) for v in values))

    def cell(
        self,
        value: object,
        number_format: str | None,
        *,
        column: int | None = None,
        indent: int = 0,
    ) -> Any:
        """``value`` as the cell its type makes (the module's docstring says how); with
        ``column``, in that table column's reused cell (``row``), text indented by ``indent``."""
        if value is None:
            return None
        if isinstance(value, str):
            if column is None:
                return self.text(value)
            return put_text(self._reused(column, indent=indent), value)
        if isinstance(value, datetime):
            value = naive_utc(value)
        if number_format == RATE_FORMAT and isinstance(value, Decimal):
            number_format = rate_format(value)
        if number_format is None:
            return value
        if column is None:
            cell = WriteOnlyCell(self.sheet)
            cell.number_format = number_format
        else:
            cell = self._reused(column, number_format)
        cell.value = value
        return cell

    def money(self, value: str | None) -> Any:
        """A decimal string of the statement as a number: read as ``Decimal``, never through a
        float of ours (openpyxl writes it with 16 significant digits, more than Excel keeps)."""
        return None if value is None else self.cell(Decimal(value), MONEY_FORMAT)

    def points(self, value: int | None) -> Any:
        return self.cell(value, POINTS_FORMAT)

    def moment(self, value: str | datetime | None) -> Any:
        moment = utc_moment(value) if isinstance(value, str) else value
        return self.cell(moment, DATETIME_FORMAT)

    def field(self, label: str, value: object) -> None:
        """One line of a label/value block: the label as text, the value as given (a cell)."""
        self.append(self.text(label), self.text(value) if isinstance(value, str) else value)

    def table_heading(
        self, columns: Sequence[Column[Any]], currency: str = "", zone: str = ""
    ) -> None:
        """The bold header row of a table, ruled below, each header aligned as its column and
        wrapped within it, the row as tall as the longest."""
        self.tall(
            max(
                (
                    lines_of(c.heading(currency, zone), width)
                    for c, width in zip(columns, self.widths, strict=False)  # a narrower table
                ),
                default=1,
            )
        )
        cells = []
        for column in columns:
            cell = self.bold(column.heading(currency, zone))
            cell.alignment = Alignment(
                horizontal=column.alignment,
                vertical="bottom",
                wrap_text=True,
                indent=column.indent,
            )
            cell.border = _HEADER_RULE
            cells.append(cell)
        self.append(*cells)

    def title(self, title: str, subject: str) -> None:
        """The sheet's first line: what it is and of what, larger than the rest."""
        first, second = self.bold(title), self.bold(subject)
        first.font = second.font = _TITLE
        self.append(first, second)

    def span(self, first: int, last: int) -> float:
        """The width of columns ``first`` to ``last`` (1 is A), in characters."""
        return sum(self.widths[first - 1 : last])

    def merge(self, first: int, last: int) -> None:
        """Columns ``first`` to ``last`` of the row about to be appended as one cell."""
        if last > first:
            row = self.rows + 1
            self.sheet.merged_cells.add(
                f"{get_column_letter(first)}{row}:{get_column_letter(last)}{row}"
            )

    def tall(self, lines: int) -> None:
        """The row about to be appended as tall as ``lines`` lines of text."""
        if lines > 1:
            self.sheet.row_dimensions[self.rows + 1].height = lines * LINE_HEIGHT

    def wrapped(self, text: str) -> Any:
        cell = self.text(text)
        cell.alignment = _WRAP_LEFT
        return cell

    def block_field(self, label: str, value: object, *, last: int, bold: bool = False) -> None:
        """A line of a header block: the label in column A, the value left-aligned across
        columns B to ``last`` (wrapped when it is text)."""
        if isinstance(value, str):
            cell = self.wrapped(value)
            if bold:
                cell.font = _BOLD
            self.tall(lines_of(value, self.span(2, last)))
        else:
            cell = value
            if isinstance(cell, Cell):
                cell.alignment = _LEFT
        self.merge(2, last)
        self.append(self.wrapped(label), cell)

    def amount_line(
        self,
        label: str,
        value: Any,
        *,
        column: int,
        net: bool = False,
        ruled: bool = False,
    ) -> None:
        """A total under a table: the label across the columns before ``column``, the figure in
        ``column`` under the figures it adds up. ``net`` emphasises it (bold, ruled above and
        double below); ``ruled``: a line above it."""
        label_cell = self.bold(label) if net else self.text(label)
        if net:
            value.font = _BOLD
            value.border = _NET_RULE
        elif ruled:
            value.border = _TOTAL_RULE
        self.merge(1, column - 1)
        self.append(label_cell, *[None] * (column - 2), value)

    def note(self, label: str, text: str, *, last: int) -> None:
        """A paragraph: its label in column A, the text wrapped across columns B to ``last``."""
        self.block_field(label, text, last=last)

    def row(self, columns: Sequence[Column[Row]], item: Row) -> None:
        """One row of a table: each column's value of ``item`` in its cell."""
        self._write(
            _TableRow(
                self.cell(
                    column.value(item), column.number_format, column=index, indent=column.indent
                )
                for index, column in enumerate(columns, 1)
            )
        )

    def rows_of(self, columns: Sequence[Column[Row]], items: Iterable[Row]) -> None:
        for item in items:
            self.row(columns, item)

    def _reused(self, column: int, number_format: str | None = None, *, indent: int = 0) -> Cell:
        """The one text cell (``number_format`` None) or number cell of a table's column."""
        key = (column, number_format)
        cell = self._reused_cells.get(key)
        if cell is None:
            cell = _ColumnCell(self.sheet, column)
            if number_format is None:
                cell.quotePrefix = True  # as quote_prefixed_cell
                if indent:
                    cell.alignment = Alignment(indent=indent)
            else:
                cell.number_format = number_format
            self._reused_cells[key] = cell
        return cell

    def close(self) -> None:
        self.sheet.close()
