"""The expiry rule in Python (``clearhouse.domain.expiry.expires_at``) equals the database's
``lot_expires_at``, on a real PostgreSQL: a property over random inputs (with inputs aimed at
the clock changes of each zone), and examples whose expected values are worked out by hand.
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy, expires_at, validate_align

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC")
BERLIN = ZoneInfo("Europe/Berlin")

SqlRule = Callable[[datetime, str, int | None, str], datetime | None]


@pytest.fixture(scope="module")
def sql_expires_at(database_url: str) -> Iterator[SqlRule]:
    """``lot_expires_at`` of the run's migrated database, called synchronously (hypothesis
    drives sync tests; the connection lives on an event loop of its own)."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    loop = asyncio.new_event_loop()
    try:
        connection = loop.run_until_complete(asyncpg.connect(dsn))
        try:

            def call(recorded_at: datetime, zone: str, months: int | None, align: str):
                return loop.run_until_complete(
                    connection.fetchval(
                        "SELECT lot_expires_at($1::timestamptz, $2::text, $3::integer, $4::text)",
                        recorded_at,
                        zone,
                        months,
                        align,
                    )
                )

            yield call
        finally:
            loop.run_until_complete(connection.close())
    finally:
        loop.close()


def _python(recorded_at: datetime, zone: str, months: int | None, align: str) -> datetime | None:
    return expires_at(recorded_at, ZoneInfo(zone), months, align)


# --- strategies -----------------------------------------------------------------------------

aligns = st.one_of(
    st.sampled_from(["exact", "month_end"]),
    # 2025 has no 29 February: every day of it is a day of every year.
    st.dates(date(2025, 1, 1), date(2025, 12, 31)).map(lambda d: f"annual:{d:%m-%d}"),
)
any_instant = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2040, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _clock_changes(zone: ZoneInfo) -> list[datetime]:
    """The local wall times (naive) just before each change of the zone's UTC offset, 2020-2046."""
    changes = []
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    end = datetime(2046, 1, 1, tzinfo=UTC)
    while moment < end:
        later = moment + timedelta(days=1)
        if moment.astimezone(zone).utcoffset() != later.astimezone(zone).utcoffset():
            step = moment
            while step.astimezone(zone).utcoffset() == moment.astimezone(zone).utcoffset():
                step += timedelta(minutes=30)
            changes.append((step - timedelta(minutes=30)).astimezone(zone).replace(tzinfo=None))
        moment = later
    return changes


CLOCK_CHANGES = {name: _clock_changes(ZoneInfo(name)) for name in ZONES if name != "UTC"}


@st.composite
def near_a_clock_change(draw: st.DrawFn) -> tuple[datetime, str, int, str]:
    """An ``exact`` lot whose target wall time lands within two hours of a clock change (in
    a skipped or repeated hour more often than chance would)."""
    zone = draw(st.sampled_from(sorted(CLOCK_CHANGES)))
    change = draw(st.sampled_from(CLOCK_CHANGES[zone]))
    months = draw(st.integers(1, 60))
    index = change.month - 1 - months
    year, month = change.year + index // 12, index % 12 + 1
    if change.day > calendar.monthrange(year, month)[1] or year < 2020:
        months, year, month = 12, change.year - 1, change.month
    wall = change.replace(year=year, month=month) + timedelta(
        microseconds=draw(st.integers(-7_200_000_000, 7_200_000_000))
    )
    fold = draw(st.integers(0, 1))
    recorded_at = wall.replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)
    return recorded_at, zone, months, "exact"


general = st.tuples(
    any_instant, st.sampled_from(ZONES), st.one_of(st.none(), st.integers(1, 60)), aligns
)


# --- the property ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(case=st.one_of(general, near_a_clock_change()))
@example(case=(datetime(2026, 1, 29, 1, 30, tzinfo=UTC), "Europe/Berlin", 2, "exact"))
@example(case=(datetime(2026, 3, 1, 1, 30, tzinfo=UTC), "Europe/Berlin", 1, "exact"))
@example(case=(datetime(2026, 9, 25, 0, 30, tzinfo=UTC), "Europe/Berlin", 1, "exact"))
@example(case=(datetime(2026, 2, 8, 7, 15, tzinfo=UTC), "America/New_York", 1, "exact"))
@example(case=(datetime(2026, 3, 4, 14, 45, tzinfo=UTC), "Australia/Lord_Howe", 1, "exact"))
@example(case=(datetime(2026, 1, 31, 12, tzinfo=UTC), "UTC", None, "month_end"))
@example(case=(datetime(2039, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "UTC", 60, "annual:12-31"))
def test_the_python_rule_equals_lot_expires_at(
    sql_expires_at: SqlRule, case: tuple[datetime, str, int | None, str]
) -> None:
    recorded_at, zone, months, align = case
    assert validate_align(align) == align
    expected = _python(recorded_at, zone, months, align)
    assert sql_expires_at(recorded_at, zone, months, align) == expected, case
    if months is None:
        assert expected is None
    else:
        assert expected is not None
        assert expected.utcoffset() == timedelta(0)
        assert expected > recorded_at


# --- examples worked out by hand ------------------------------------------------------------

EXAMPLES = [
    pytest.param(
        # 10:00 CET is 09:00Z; one month after the 31st is the last day of February, 10:00 CET.
        datetime(2026, 1, 31, 10, tzinfo=BERLIN), "Europe/Berlin", 1, "exact",
        datetime(2026, 2, 28, 9, tzinfo=UTC),
        id="exact-month-end-clamped",
    ),
    pytest.param(
        # 14:00 CEST on 10 October; a month later is November; its end is midnight CET
        # starting 1 December, i.e. 23:00Z on 30 November.
        datetime(2026, 10, 10, 12, tzinfo=UTC), "Europe/Berlin", 1, "month_end",
        datetime(2026, 11, 30, 23, tzinfo=UTC),
        id="month-end",
    ),
    pytest.param(
        # 02:30 CET on 29 January; two months on, 29 March 02:30 does not exist (02:00 CET ->
        # 03:00 CEST); PostgreSQL reads it with the offset before the change, +01:00: 01:30Z.
        datetime(2026, 1, 29, 1, 30, tzinfo=UTC), "Europe/Berlin", 2, "exact",
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        id="exact-into-the-skipped-hour",
    ),
    pytest.param(
        # 02:30 CET on 29 March 2025 (a Saturday: Berlin changed on the 30th); a year on,
        # 29 March 2026 02:30 is skipped: read at +01:00, 01:30Z.
        datetime(2025, 3, 29, 1, 30, tzinfo=UTC), "Europe/Berlin", 12, "exact",
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        id="exact-a-year-into-the-skipped-hour",
    ),
    pytest.param(
        # 02:30 CET on 1 March; one month on is 1 April 02:30, after the change: CEST,
        # 00:30Z (a month after 1 March is 1 April, not 29 March).
        datetime(2026, 3, 1, 1, 30, tzinfo=UTC), "Europe/Berlin", 1, "exact",
        datetime(2026, 4, 1, 0, 30, tzinfo=UTC),
        id="exact-across-the-spring-change",
    ),
    pytest.param(
        # 02:30 CEST on 25 September; 25 October 02:30 happens twice (03:00 CEST -> 02:00
        # CET); PostgreSQL takes the reading after the change, +01:00: 01:30Z.
        datetime(2026, 9, 25, 0, 30, tzinfo=UTC), "Europe/Berlin", 1, "exact",
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        id="exact-into-the-repeated-hour",
    ),
    pytest.param(
        # 10:00 CEST on 5 May 2026; twelve months on is 5 May 2027, 10:00; the first 1 January
        # on or after it is 2028's, midnight CET: 23:00Z on 31 December 2027.
        datetime(2026, 5, 5, 8, tzinfo=UTC), "Europe/Berlin", 12, "annual:01-01",
        datetime(2027, 12, 31, 23, tzinfo=UTC),
        id="annual",
    ),
    pytest.param(
        # The target is exactly midnight starting the anniversary day: that day itself.
        datetime(2026, 6, 30, 22, tzinfo=UTC), "Europe/Berlin", 12, "annual:07-01",
        datetime(2027, 6, 30, 22, tzinfo=UTC),
        id="annual-on-the-day",
    ),
    pytest.param(
        datetime(2026, 5, 5, 8, tzinfo=UTC), "Europe/Berlin", None, "exact", None,
        id="never",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("recorded_at", "zone", "months", "align", "expected"), EXAMPLES)
def test_worked_examples_in_python_and_in_sql(
    sql_expires_at: SqlRule,
    recorded_at: datetime,
    zone: str,
    months: int | None,
    align: str,
    expected: datetime | None,
) -> None:
    assert _python(recorded_at, zone, months, align) == expected
    assert sql_expires_at(recorded_at, zone, months, align) == expected


# --- the policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"months": 0},
        {"months": 1201},
        {"align": "annual:02-29"},
        {"align": "annual:13-01"},
        {"align": "annual:04-31"},
        {"align": "weekly"},
        {"reminder_days": (7, 7)},
        {"reminder_days": (0,)},
    ],
    ids=repr,
)
def test_the_policy_refuses(arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        ExpiryPolicy(mode=ExpiryMode.FIXED, **arguments)  # type: ignore[arg-type]


def test_reminder_days_come_back_largest_first() -> None:
    policy = ExpiryPolicy(mode=ExpiryMode.FIXED, months=12, reminder_days=(7, 30, 1))
    assert policy.reminder_days == (30, 7, 1)
    assert policy.lot_months == 12
    assert ExpiryPolicy().lot_months is None
