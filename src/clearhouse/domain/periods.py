"""Periods: calendar months in the coalition's time zone, written ``YYYY-MM``.

An entry belongs to the period of its ``recorded_at`` (not of the partner's ``occurred_at``),
as in card clearing: a refund is a new transaction in the current period.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from clearhouse.domain.errors import InvalidRequest

PERIOD_PATTERN: Final = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])", re.ASCII)
YEAR_MIN: Final = 1000
"""Periods are written with four digits, from 1000-01 to 9999-11 (whose month after exists)."""


def utc_instant(moment: datetime, *, name: str) -> datetime:
    """``moment`` in UTC; refused when it has no time zone or lies beyond the calendar in UTC
    (``0001-01-01T00:00:00+01:00`` is a year 0 in UTC, ``9999-12-31T23:59:59-01:00`` a year
    10000: neither exists as a datetime, nor in PostgreSQL's timestamptz as Python maps it)."""
    if moment.tzinfo is None:
        raise InvalidRequest(f"{name} must carry a time zone", field=name)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidRequest(f"{name} lies beyond the calendar in UTC", field=name) from exc


def period_of(recorded_at: datetime, zone: ZoneInfo) -> str:
    """The period (``YYYY-MM``) that an instant falls in, in the coalition's time zone."""
    if recorded_at.tzinfo is None:
        raise ValueError("recorded_at must carry its time zone")
    return recorded_at.astimezone(zone).strftime("%Y-%m")


def period_bounds(period: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where ``period`` starts (inclusive) and ends (exclusive)."""
    match = PERIOD_PATTERN.fullmatch(period)
    if match is None:
        raise InvalidRequest(f"period must be written YYYY-MM, not {period!r}")
    year, month = int(match[1]), int(match[2])
    if year < YEAR_MIN:
        raise InvalidRequest(f"period {period} lies before {YEAR_MIN}")
    try:
        start = datetime(year, month, 1, tzinfo=zone)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidRequest(f"period {period} lies beyond the calendar") from exc
