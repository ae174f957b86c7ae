"""Expiry on Berlin's calendar: clock changes and month ends, through the services.

Every expected instant is worked out by hand from the calendar: Berlin is CET (+01:00) until
02:00 on 29 March 2026, CEST (+02:00) until 03:00 on 25 October 2026, CET again after.
``month_end`` is local midnight starting the month after the one a lot's ``months`` land in;
``annual:MM-DD`` is local midnight starting that day; a lot expires when the ledger clock
reaches its ``expires_at`` (the run takes ``expires_at <= now``). Each test has a database of
its own: it moves the sandbox clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.errors import PeriodNotEnded
from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy, expires_at
from clearhouse.domain.periods import period_of
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import ledger_time, set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry
from clearhouse.services.holds import Holds
from clearhouse.services.posting import Ledger
from tests.conftest import fresh_database
from tests.services.builders import ZONE, a_partner, points_request, unique

BERLIN = ZoneInfo(ZONE)
DRIFT_MAX = timedelta(seconds=5)
"""How far the ticking sandbox clock may run on between being set and an issue reading it."""


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_database() as database:
        yield database


def _policy(months: int, align: str) -> ExpiryPolicy:
    return ExpiryPolicy(mode=ExpiryMode.FIXED, months=months, align=align)


def _expiry(database: Database) -> Expiry:
    ledger = Ledger(database, ContractBook(database), ZONE)
    return Expiry(database, Holds(database, ContractBook(database), ledger), ZONE)


async def _member(database: Database) -> str:
    member_id = unique("m")
    await enrol_members(database, [member_id])
    return member_id


async def _issue_at(
    database: Database, at: datetime, policy: ExpiryPolicy, partner: str, member: str, points: int
) -> asyncpg.Record:
    """Issue ``points`` with the clock set to ``at``; the lot made, as stored."""
    await set_ledger_time(database, sandbox=True, at=at)
    ledger = Ledger(database, ContractBook(database), ZONE, policy)
    posted = await ledger.issue(
        partner, points_request(member, points), idempotency_key=unique("issue")
    )
    async with database.driver_connection() as connection:
        lot = await connection.fetchrow(
            "SELECT recorded_at, expires_at FROM lots WHERE entry_id = $1", posted.entry.entry_id
        )
    assert lot is not None
    assert timedelta(0) <= lot["recorded_at"] - at < DRIFT_MAX
    # The database's rule and the domain's agree on this very lot.
    assert lot["expires_at"] == expires_at(lot["recorded_at"], BERLIN, policy.months, policy.align)
    return lot


def _drift(lot: asyncpg.Record, at: datetime) -> timedelta:
    """How far past ``at`` the lot was recorded: an ``exact`` expiry carries it along."""
    drift: timedelta = lot["recorded_at"] - at
    return drift


async def _expires_exactly_at(database: Database, instant: datetime, points: int) -> None:
    """A second before ``instant`` a run expires nothing; at it, ``points`` in one entry; a
    rerun expires nothing."""
    await set_ledger_time(database, sandbox=True, at=instant - timedelta(seconds=1))
    before = await _expiry(database).run()
    # The clock ticks on from where it was set: the run above read it before the instant.
    assert await ledger_time(database) < instant
    assert (before.entries, before.points) == (0, 0)

    await set_ledger_time(database, sandbox=True, at=instant)
    done = await _expiry(database).run()
    assert (done.members, done.entries, done.points) == (1, 1, points)
    again = await _expiry(database).run()
    assert (again.entries, again.points) == (0, 0)


async def _balance(database: Database, member: str) -> int:
    async with database.driver_connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT balance_points FROM member_balances WHERE member_id = $1", member
            )
        )


async def test_month_end_is_local_midnight_starting_the_next_month_across_the_october_change(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    month_end = _policy(1, "month_end")
    # 21:30Z on 30 September is 23:30 CEST, still 30 September in Berlin; a month on is
    # 30 October 23:30; that month ends at midnight starting 1 November, in CET by then (the
    # clocks went back on 25 October): 23:00Z on 31 October. Not 22:00Z (the offset at issue),
    # not 1 November 00:00Z (the month end in UTC).
    october = await _issue_at(
        db, datetime(2026, 9, 30, 21, 30, tzinfo=UTC), month_end, partner, member, 40
    )
    assert october["expires_at"] == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    # An hour later, 22:30Z, is 00:30 CEST on 1 October in Berlin: a month on is 1 November,
    # which ends at midnight CET starting 1 December: 23:00Z on 30 November. A month later
    # than the lot issued an hour before.
    november = await _issue_at(
        db, datetime(2026, 9, 30, 22, 30, tzinfo=UTC), month_end, partner, member, 100
    )
    assert november["expires_at"] == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)

    await _expires_exactly_at(db, datetime(2026, 10, 31, 23, 0, tzinfo=UTC), 40)
    assert await _balance(db, member) == 100
    await _expires_exactly_at(db, datetime(2026, 11, 30, 23, 0, tzinfo=UTC), 100)
    assert await _balance(db, member) == 0


async def test_exact_keeps_the_local_time_so_its_utc_instant_moves_with_the_spring_change(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    issued = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)
    lot = await _issue_at(db, issued, _policy(1, "exact"), partner, member, 70)
    # 11:00Z on Saturday 28 March is 12:00 CET; the clocks go forward the next night; a month
    # on is 28 April 12:00 CEST: 10:00Z, i.e. 31 days on less the hour the offset gained.
    expected = datetime(2026, 4, 28, 10, 0, tzinfo=UTC)
    assert expected == issued + timedelta(days=31) - timedelta(hours=1)
    assert lot["expires_at"] == expected + _drift(lot, issued)

    await _expires_exactly_at(db, lot["expires_at"], 70)
    assert await _balance(db, member) == 0


async def test_exact_into_a_skipped_or_repeated_local_hour_expires_at_its_later_reading(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    skipped_from = datetime(2026, 1, 29, 1, 30, tzinfo=UTC)
    skipped = await _issue_at(db, skipped_from, _policy(2, "exact"), partner, member, 30)
    # 01:30Z on 29 January is 02:30 CET; two months on is 29 March 02:30, which Berlin skips
    # (02:00 CET -> 03:00 CEST): read with the offset before the change, +01:00: 01:30Z.
    assert skipped["expires_at"] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC) + _drift(
        skipped, skipped_from
    )
    repeated_from = datetime(2026, 9, 25, 0, 30, tzinfo=UTC)
    repeated = await _issue_at(db, repeated_from, _policy(1, "exact"), partner, member, 50)
    # 00:30Z on 25 September is 02:30 CEST; a month on is 25 October 02:30, which Berlin
    # lives twice (03:00 CEST -> 02:00 CET): at 00:30Z and at 01:30Z; the later one counts.
    first_reading = datetime(2026, 10, 25, 0, 30, tzinfo=UTC) + _drift(repeated, repeated_from)
    assert repeated["expires_at"] == first_reading + timedelta(hours=1)

    await _expires_exactly_at(db, skipped["expires_at"], 30)
    # The first 02:30 on 25 October has passed: the points are still there.
    await set_ledger_time(db, sandbox=True, at=first_reading + timedelta(seconds=1))
    assert (await _expiry(db).run()).points == 0
    await _expires_exactly_at(db, repeated["expires_at"], 50)
    assert await _balance(db, member) == 0


async def test_points_expiring_as_berlin_closes_the_year_land_in_the_next_period(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    clearing = Clearing(db, zone=BERLIN, key=CoalitionKey.of(Ed25519PrivateKey.generate()))
    lot = await _issue_at(
        db, datetime(2026, 11, 5, 11, 0, tzinfo=UTC), _policy(1, "month_end"), partner, member, 100
    )
    # 11:00Z on 5 November is 12:00 CET; a month on is 5 December; December ends at midnight
    # CET starting 1 January 2027: 23:00Z on 31 December 2026, while UTC is still in 2026.
    year_end = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert lot["expires_at"] == year_end

    await set_ledger_time(db, sandbox=True, at=year_end - timedelta(seconds=1))
    assert (await clearing.close("2026-11")).entry_count == 1
    with pytest.raises(PeriodNotEnded):
        await clearing.close("2026-12")  # a second of Berlin's December is left
    assert (await _expiry(db).run()).points == 0

    await set_ledger_time(db, sandbox=True, at=year_end)
    december = await clearing.close("2026-12")
    assert (december.ends_at, december.entry_count) == (year_end, 0)
    # December is sealed, yet the run is not refused: its clock is in Berlin's January.
    run = await _expiry(db).run()
    assert (run.entries, run.points) == (1, 100)
    async with db.driver_connection() as connection:
        recorded_at = await connection.fetchval(
            "SELECT recorded_at FROM entries WHERE member_id = $1 AND kind = 'expiry'", member
        )
    assert timedelta(0) <= recorded_at - year_end < DRIFT_MAX
    assert (recorded_at.astimezone(UTC).year, period_of(recorded_at, BERLIN)) == (2026, "2027-01")

    # 23:00Z on 31 January is midnight CET starting February: January has ended in Berlin, and
    # its seal counts the expiry entry.
    await set_ledger_time(db, sandbox=True, at=datetime(2027, 1, 31, 23, 0, tzinfo=UTC))
    assert (await clearing.close("2027-01")).entry_count == 1


async def test_annual_alignment_expires_at_local_midnight_starting_the_day_it_names(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    issued = datetime(2026, 7, 15, 10, 0, tzinfo=UTC)
    # 10:00Z on 15 July is 12:00 CEST; twelve months on is 15 July 2027, 12:00.
    # annual:12-31: midnight CET starting 31 December 2027, the first on or after it:
    # 23:00Z on 30 December, a day before the year ends.
    on_the_31st = await _issue_at(db, issued, _policy(12, "annual:12-31"), partner, member, 20)
    assert on_the_31st["expires_at"] == datetime(2027, 12, 30, 23, 0, tzinfo=UTC)
    # annual:01-01: midnight CET starting 1 January 2028, the year's end: 23:00Z on 31 December.
    at_year_end = await _issue_at(db, issued, _policy(12, "annual:01-01"), partner, member, 80)
    assert at_year_end["expires_at"] == datetime(2027, 12, 31, 23, 0, tzinfo=UTC)

    await _expires_exactly_at(db, datetime(2027, 12, 30, 23, 0, tzinfo=UTC), 20)
    await _expires_exactly_at(db, datetime(2027, 12, 31, 23, 0, tzinfo=UTC), 80)
    assert await _balance(db, member) == 0
