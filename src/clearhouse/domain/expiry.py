"""When points expire: the coalition's policy, computed once per lot, at issue.

Every issue (and positive adjustment) is a lot; its ``expires_at`` follows the policy in force
when it was recorded, and a later policy never rewrites it. ``mode = "none"``: points never
expire. ``mode = "fixed"``: ``months`` after issue, aligned in the coalition's time zone:
``exact`` (the same local time ``months`` later; from the 29th to the 31st, the last day of a
shorter month), ``month_end`` (at the end of that month: local midnight starting the next) or
``annual:MM-DD`` (local midnight starting the first MM-DD on or after it). The database computes
the same in ``lot_expires_at``; a property test proves the two equal.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from clearhouse.domain.errors import InvalidRequest

MONTHS_MAX: Final = 1200
REINSTATEMENT_DAYS_DEFAULT: Final = 30
REMINDER_DAYS_DEFAULT: Final = (30, 7)
REMINDER_DAYS_MAX: Final = 365
EXPIRING_WITHIN_DAYS_MAX: Final = 3660
"""The widest window a member's expiring points are listed for."""
ANNUAL_PATTERN: Final = re.compile(r"annual:(\d{2})-(\d{2})", re.ASCII)


class ExpiryMode(StrEnum):
    NONE = "none"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """The coalition's expiry policy; ``NO_EXPIRY`` unless configured."""

    mode: ExpiryMode = ExpiryMode.NONE
    months: int = 36
    align: str = "exact"
    reminder_days: tuple[int, ...] = REMINDER_DAYS_DEFAULT
    """Days before a lot's expiry at which the member's partners are told, largest first."""
    reinstatement_days: int = REINSTATEMENT_DAYS_DEFAULT
    """How long points given back by a reversal after their lot expired stay, as a new lot."""

    def __post_init__(self) -> None:
        if not 1 <= self.months <= MONTHS_MAX:
            raise InvalidRequest(f"expiry months must lie between 1 and {MONTHS_MAX}")
        validate_align(self.align)
        if not 1 <= self.reinstatement_days <= 3660:
            raise InvalidRequest("reinstatement days must lie between 1 and 3660")
        if any(not 1 <= d <= REMINDER_DAYS_MAX for d in self.reminder_days) or len(
            set(self.reminder_days)
        ) != len(self.reminder_days):
            raise InvalidRequest(
                f"reminder days must be distinct whole days between 1 and {REMINDER_DAYS_MAX}"
            )
        object.__setattr__(self, "reminder_days", tuple(sorted(self.reminder_days, reverse=True)))

    @property
    def lot_months(self) -> int | None:
        """The months a new lot lasts, as the database takes it: None when points never expire."""
        return self.months if self.mode is ExpiryMode.FIXED else None


def validate_align(align: str) -> str:
    """``exact``, ``month_end`` or ``annual:MM-DD`` of a day every year has (not 02-29)."""
    if align in ("exact", "month_end"):
        return align
    match = ANNUAL_PATTERN.fullmatch(align)
    if match is None:
        raise InvalidRequest(
            f"expiry align must be exact, month_end or annual:MM-DD, not {align!r}"
        )
    month, day = int(match[1]), int(match[2])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2025, month)[1]:
        raise InvalidRequest(f"{align!r} is not a day of every year")
    return align


NO_EXPIRY: Final = ExpiryPolicy()


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` (naive, local) ``months`` later, on the month's last day when it is shorter."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expires_at(
    recorded_at: datetime, zone: ZoneInfo, months: int | None, align: str
) -> datetime | None:
    """When points recorded at ``recorded_at`` expire (UTC); None when they never do."""
    if months is None:
        return None
    target = add_months(recorded_at.astimezone(zone).replace(tzinfo=None), months)
    if align == "exact":
        local = target
    elif align == "month_end":
        first = date(target.year, target.month, 1) + timedelta(days=32)
        local = target.replace(
            year=first.year, month=first.month, day=1, hour=0, minute=0, second=0, microsecond=0
        )
    else:
        match = ANNUAL_PATTERN.fullmatch(validate_align(align))
        assert match is not None
        local = target.replace(
            month=int(match[1]), day=int(match[2]), hour=0, minute=0, second=0, microsecond=0
        )
        if local < target:
            local = local.replace(year=local.year + 1)
    return _utc(local, zone)


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a naive local time as PostgreSQL reads ``timestamp AT TIME ZONE``: of a
    time that a clock change skipped or repeated, the later of its two readings."""
    return max(local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))


@dataclass(frozen=True, slots=True)
class ExpiringPoints:
    """Points of a member that expire at ``expires_at`` unless redeemed before."""

    expires_at: datetime
    points: int


def reminder_due(now: datetime, expires_at: datetime, reminder_days: tuple[int, ...]) -> int | None:
    """The reminder due now for points expiring at ``expires_at``: the smallest offset (days
    before expiry) already reached, so that a lot made or found late is told once, at the
    nearest offset, and never at a farther one after it; None before the first offset and once
    the points expired."""
    if expires_at <= now:
        return None
    reached = [d for d in reminder_days if expires_at - now <= timedelta(days=d)]
    return min(reached, default=None)


@dataclass(frozen=True, slots=True)
class DueReminder:
    """Points of a member expiring on one day of the coalition's calendar, from ``expires_at``
    (the day's earliest expiry) on, told ``days_before`` days ahead."""

    day: date
    expires_at: datetime
    points: int
    days_before: int


def reminders_due(
    now: datetime,
    expiring: list[ExpiringPoints],
    reminder_days: tuple[int, ...],
    zone: ZoneInfo,
) -> list[DueReminder]:
    """The reminders due now of a member's expiring points: one per day of expiry in the
    coalition's time zone (lots of one day are one reminder, however many purchases made
    them), at the offset its earliest expiry reached."""
    days: dict[date, list[ExpiringPoints]] = {}
    for points in expiring:
        days.setdefault(points.expires_at.astimezone(zone).date(), []).append(points)
    due = []
    for day, of_day in sorted(days.items()):
        earliest = min(p.expires_at for p in of_day)
        offset = reminder_due(now, earliest, reminder_days)
        if offset is not None:
            due.append(DueReminder(day, earliest, sum(p.points for p in of_day), offset))
    return due


def validate_within_days(within_days: int) -> int:
    if not 1 <= within_days <= EXPIRING_WITHIN_DAYS_MAX:
        raise InvalidRequest(
            f"within_days must lie between 1 and {EXPIRING_WITHIN_DAYS_MAX}", field="within_days"
        )
    return within_days
