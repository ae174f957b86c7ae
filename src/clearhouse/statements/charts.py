"""The workbooks' two charts, each drawn from cells of its sheet, so a reader can check every bar
against a figure: the net position per partner (the coalition's Summary) and the points issued
and redeemed per day of the month (a partner's Reconciliation).

A chart is one per workbook, not per row: the only per-entry cost is ``DailyPoints.add``, which
converts an entry's time to the coalition's day only when it leaves the day of the one before
(the entries come in the order they were recorded).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef

from clearhouse.domain.records import StatementEntry
from clearhouse.statements.sheets import DATE_FORMAT, POINTS_FORMAT, Sheet

AXIS_FORMAT: Final = "#,##0;(#,##0)"
"""The net axis: whole amounts, a negative one in brackets as in the table."""
CM: Final = 1.0
"""openpyxl sizes a chart in centimetres."""
ISSUE_KIND: Final = "issue"
REDEEM_KIND: Final = "redeem"
DAILY_HEADING: Final = "Points per day ({zone}), as recorded: issues and redemptions"
DAILY_NOTE: Final = (
    "Per day of the month on the coalition's clocks, the points of the issue and redeem "
    "entries recorded that day (the Entries sheet), before reversals: they add up to the "
    "points of the Summary's issue and redemption lines."
)


@dataclass(slots=True)
class DailyPoints:
    """The points issued and redeemed on each day of a month, in the coalition's time zone."""

    period: str
    zone: ZoneInfo
    days: list[date] = field(init=False)
    issued: list[int] = field(init=False)
    redeemed: list[int] = field(init=False)
    _start: datetime | None = field(init=False, default=None)
    _end: datetime | None = field(init=False, default=None)
    _index: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        year, month = (int(part) for part in self.period.split("-"))
        first = date(year, month, 1)
        count = calendar.monthrange(year, month)[1]
        self.days = [first + timedelta(days=n) for n in range(count)]
        self.issued = [0] * count
        self.redeemed = [0] * count

    def add(self, entry: StatementEntry) -> None:
        """Count ``entry`` on its day if it is an issue or a redeem."""
        if entry.kind == ISSUE_KIND:
            figures = self.issued
        elif entry.kind == REDEEM_KIND:
            figures = self.redeemed
        else:
            return
        index = self._day(entry.recorded_at)
        if 0 <= index < len(figures):
            figures[index] += entry.points

    def _day(self, moment: datetime) -> int:
        """The index of ``moment``'s day; the day's bounds are kept, so that the next entry,
        most likely of the same day, needs no conversion."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        start, end = self._start, self._end
        if start is None or end is None or not start <= moment < end:
            day = moment.astimezone(self.zone).date()
            self._start = datetime.combine(day, time(), self.zone)
            self._end = datetime.combine(day + timedelta(days=1), time(), self.zone)
            self._index = (day - self.days[0]).days
        return self._index


def daily_points_table(sheet: Sheet, days: DailyPoints) -> None:
    """The days of the month as a table (day, issued, redeemed, and a total), with a column
    chart of the two beside it, in columns D to G."""
    sheet.heading(DAILY_HEADING.format(zone=days.zone.key))
    sheet.note("Note", DAILY_NOTE, last=7)
    header_row = sheet.rows + 1
    sheet.append(sheet.bold("Day"), sheet.bold("Points issued"), sheet.bold("Points redeemed"))
    for day, issued, redeemed in zip(days.days, days.issued, days.redeemed, strict=True):
        sheet.append(sheet.cell(day, DATE_FORMAT), sheet.points(issued), sheet.points(redeemed))
    last_row = sheet.rows
    sheet.append(
        sheet.bold("Total"), sheet.points(sum(days.issued)), sheet.points(sum(days.redeemed))
    )
    chart = BarChart()
    chart.type = "col"
    chart.grouping = "clustered"
    chart.title = "Points issued and redeemed per day"
    chart.y_axis.title = "Points"
    chart.y_axis.number_format = POINTS_FORMAT
    chart.x_axis.number_format = "d"
    data = Reference(sheet.sheet, min_col=2, max_col=3, min_row=header_row, max_row=last_row)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(
        Reference(sheet.sheet, min_col=1, min_row=header_row + 1, max_row=last_row)
    )
    _show_axes(chart)
    chart.legend.position = "b"
    chart.width, chart.height = 12.5 * CM, 9 * CM
    sheet.sheet.add_chart(chart, f"D{header_row}")


def net_position_chart(
    sheet: Sheet,
    currency: str,
    rows: tuple[int, int],
    *,
    at_row: int,
    names: int = 2,
    nets: int = 6,
) -> None:
    """A bar per partner of its net (column ``nets`` of ``rows``, named by column ``names``):
    left of zero the partner pays the coalition, right of it the coalition pays the partner."""
    first, last = rows
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"Net position per partner ({currency})"
    chart.legend = None
    chart.y_axis.number_format = AXIS_FORMAT
    chart.add_data(Reference(sheet.sheet, min_col=nets, min_row=first, max_row=last))
    # Names are text: a string reference, or Excel would number the bars 1, 2, 3.
    names_ref = Reference(sheet.sheet, min_col=names, min_row=first, max_row=last)
    chart.series[0].cat = AxDataSource(strRef=StrRef(f=str(names_ref)))
    _show_axes(chart)
    chart.x_axis.tickLblPos = "low"  # the names left of the bars, not over those that point left
    chart.width = 24 * CM
    chart.height = max(5.0, 2.5 + 0.8 * (last - first + 1)) * CM
    sheet.sheet.add_chart(chart, f"A{at_row}")


def _show_axes(chart: BarChart) -> None:
    """openpyxl marks a new chart's axes deleted; a reader needs them."""
    chart.x_axis.delete = False
    chart.y_axis.delete = False
