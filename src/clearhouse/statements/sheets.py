"""Writing the sheets of a statement workbook: columns declared once, cells typed by value.

A table is a sequence of ``Column``: its header, its width, its number format and how to take
its value from a row. The same declaration writes the header row, sets the column widths and
makes every cell, so a column cannot get a header without a value or a value without its format.
A value becomes its cell by its type, in one place (``Sheet.cell``): a string is a quote-prefixed
text cell (``spreadsheet_text``), never a formula; a moment is a naive UTC date; a number takes
the column's number format, or none when the column has none; ``None`` is an empty cell.

Sheets are write-only (openpyxl): a row is written out as it is appended, so ``Sheet.row``
reuses one styled cell per column and kind instead of a new one per value.

Every sheet prints the same way, set where it is made (``Sheet.__init__``): in its orientation,
one page wide and as many pages tall as it needs, each page headed with the statement and its
period (``PrintedPages``) and numbered "Page n of m"; a table that runs over many pages
(Entries) repeats its header row on each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import zip_longest
from typing import Any, Final, Generic, Literal, TypeVar

from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clearhouse.statements.spreadsheet_text import put_text, quote_prefixed_cell, text_cell

MONEY_FORMAT: Final = "#,##0.00"
RATE_FORMAT: Final = "0.000000"
POINTS_FORMAT: Final = "#,##0"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
SHARE_FORMAT: Final = "0.00%"
"""A share as a number (0.25), shown as a percentage (25.00%)."""

_BOLD: Final = Font(bold=True)

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
    """The header; ``{currency}`` in it is replaced by the statement's currency."""
    width: float
    number_format: str | None
    """The format of its numbers and moments; ``None``: as the spreadsheet shows them."""
    value: Callable[[Row], object]

    def heading(self, currency: str) -> str:
        return self.header.format(currency=currency)


def naive_utc(moment: datetime) -> datetime:
    """Excel has no time zones: the moment in UTC, without its zone (naive means UTC)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_moment(text: str) -> datetime:
    """A statement's RFC 3339 ``…Z`` timestamp as a naive UTC datetime."""
    return naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


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
        # These are written before the first row in write-only mode, so they are set first.
        self.sheet.freeze_panes = freeze
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
        self.sheet.append(list(values))
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

    def cell(self, value: object, number_format: str | None, *, column: int | None = None) -> Any:
        """``value`` as the cell its type makes (the module's docstring says how); with
        ``column``, in that table column's reused cell (``row``)."""
        if value is None:
            return None
        if isinstance(value, str):
            return self.text(value) if column is None else put_text(self._reused(column), value)
        if isinstance(value, datetime):
            value = naive_utc(value)
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

    def table_heading(self, columns: Sequence[Column[Any]], currency: str = "") -> None:
        """The bold header row of a table."""
        self.heading(*(column.heading(currency) for column in columns))

    def row(self, columns: Sequence[Column[Row]], item: Row) -> None:
        """One row of a table: each column's value of ``item`` in its cell."""
        self.append(
            *(
                self.cell(column.value(item), column.number_format, column=index)
                for index, column in enumerate(columns)
            )
        )

    def rows_of(self, columns: Sequence[Column[Row]], items: Iterable[Row]) -> None:
        for item in items:
            self.row(columns, item)

    def _reused(self, column: int, number_format: str | None = None) -> Cell:
        """The one text cell (``number_format`` None) or number cell of a table's column."""
        key = (column, number_format)
        cell = self._reused_cells.get(key)
        if cell is None:
            if number_format is None:
                cell = quote_prefixed_cell(self.sheet)
            else:
                cell = WriteOnlyCell(self.sheet)
                cell.number_format = number_format
            self._reused_cells[key] = cell
        return cell

    def close(self) -> None:
        self.sheet.close()
