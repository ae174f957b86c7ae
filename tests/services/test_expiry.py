"""Expiry by lots: lots made at issue, taken earliest-expiring first, expired by the run.

Each test has a database of its own: it moves the sandbox clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from clearhouse.domain.errors import ExpiryRunInProgress, InsufficientPoints
from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry, ExpiryRun
from clearhouse.services.holds import HoldRequest, Holds
from clearhouse.services.posting import Ledger
from tests.conftest import fresh_database
from tests.services.builders import OCCURRED_AT, ZONE, a_partner, points_request, unique

START = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
ONE_MONTH = ExpiryPolicy(mode=ExpiryMode.FIXED, months=1, align="exact")
TWO_MONTHS = ExpiryPolicy(mode=ExpiryMode.FIXED, months=2, align="exact")


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=START)
        yield database


def _ledger(database: Database, policy: ExpiryPolicy = ONE_MONTH) -> Ledger:
    return Ledger(database, ContractBook(database), ZONE, policy)


def _expiry(database: Database) -> Expiry:
    ledger = _ledger(database)
    return Expiry(database, Holds(database, ContractBook(database), ledger), ZONE)


async def _member(database: Database) -> str:
    from clearhouse.services.coalition import enrol_members

    member_id = unique("m")
    await enrol_members(database, [member_id])
    return member_id


async def _issue(ledger: Ledger, partner: str, member: str, points: int) -> UUID:
    posted = await ledger.issue(
        partner, points_request(member, points), idempotency_key=unique("issue")
    )
    return posted.entry.entry_id


async def _redeem(ledger: Ledger, partner: str, member: str, points: int) -> UUID:
    posted = await ledger.redeem(
        partner, points_request(member, points), idempotency_key=unique("redeem")
    )
    return posted.entry.entry_id


async def _lots(database: Database, member: str) -> list[asyncpg.Record]:
    async with database.driver_connection() as connection:
        return list(
            await connection.fetch(
                "SELECT lot_id, entry_id, partner_id, points, remaining, expires_at,"
                " origin_lot_id, cohort_at FROM lots WHERE member_id = $1 ORDER BY lot_id",
                member,
            )
        )


async def _taken(database: Database, entry_id: UUID) -> dict[int, int]:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT lot_id, points FROM lot_consumptions WHERE entry_id = $1", entry_id
        )
    return {r["lot_id"]: r["points"] for r in rows}


async def _balance(database: Database, member: str) -> int:
    async with database.driver_connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT balance_points FROM member_balances WHERE member_id = $1", member
            )
        )


async def _expired_entries(database: Database, member: str) -> list[asyncpg.Record]:
    async with database.driver_connection() as connection:
        return list(
            await connection.fetch(
                "SELECT entry_id, points, member_balance_after FROM entries"
                " WHERE member_id = $1 AND kind = 'expiry' ORDER BY recorded_at",
                member,
            )
        )


async def test_an_issue_is_a_lot_expiring_by_the_policy_in_force_when_it_was_recorded(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    await _issue(_ledger(db), partner, member, 100)
    await _issue(_ledger(db, TWO_MONTHS), partner, member, 50)
    await _issue(_ledger(db, ExpiryPolicy()), partner, member, 7)
    lots = await _lots(db, member)
    assert [(lot["points"], lot["remaining"], lot["partner_id"]) for lot in lots] == [
        (100, 100, partner),
        (50, 50, partner),
        (7, 7, partner),
    ]
    # 5 October 12:00 in Berlin (the clock ticks on from there), one and two months later at
    # the same local time, an hour later in UTC after the clocks went back; never.
    first, second, never = (lot["expires_at"] for lot in lots)
    assert timedelta(0) <= first - datetime(2026, 11, 5, 11, 0, tzinfo=UTC) < timedelta(seconds=5)
    assert timedelta(0) <= second - datetime(2026, 12, 5, 11, 0, tzinfo=UTC) < timedelta(seconds=5)
    assert never is None


async def test_a_redeem_takes_the_earliest_expiring_lot_first_and_never_expiring_points_last(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    never = await _issue(_ledger(db, ExpiryPolicy()), partner, member, 10)
    later = await _issue(_ledger(db, TWO_MONTHS), partner, member, 50)
    sooner = await _issue(_ledger(db), partner, member, 30)
    by_entry = {lot["entry_id"]: lot["lot_id"] for lot in await _lots(db, member)}
    redeem = await _redeem(_ledger(db), partner, member, 85)
    assert await _taken(db, redeem) == {
        by_entry[sooner]: 30,
        by_entry[later]: 50,
        by_entry[never]: 5,
    }
    assert sum(lot["remaining"] for lot in await _lots(db, member)) == await _balance(db, member)


async def test_the_run_expires_only_lots_past_their_time_once_per_member_and_a_rerun_is_a_noop(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member, other = await _member(db), await _member(db)
    await _issue(_ledger(db), partner, member, 100)
    await _issue(_ledger(db), partner, member, 20)
    await _issue(_ledger(db, TWO_MONTHS), partner, member, 40)
    await _issue(_ledger(db, TWO_MONTHS), partner, other, 40)
    await _redeem(_ledger(db), partner, member, 30)
    await set_ledger_time(db, sandbox=True, at=START + timedelta(days=20))
    nothing = await _expiry(db).run()
    assert (nothing.entries, nothing.points) == (0, 0)

    await set_ledger_time(db, sandbox=True, at=datetime(2026, 11, 5, 11, 0, 1, tzinfo=UTC))
    done = await _expiry(db).run()
    assert (done.members, done.entries, done.points) == (1, 1, 90)
    (entry,) = await _expired_entries(db, member)
    assert (entry["points"], entry["member_balance_after"]) == (90, 40)
    lots = await _lots(db, member)
    assert sorted((await _taken(db, entry["entry_id"])).values()) == [20, 70]
    assert [lot["remaining"] for lot in lots] == [0, 0, 40]
    assert await _balance(db, other) == 40

    again = await _expiry(db).run()
    assert (again.entries, again.points) == (0, 0)
    assert len(await _expired_entries(db, member)) == 1


async def test_held_points_never_expire_and_what_a_void_releases_expires_in_the_next_run(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    ledger = _ledger(db)
    holds = Holds(db, ContractBook(db), ledger)
    await _issue(ledger, partner, member, 100)
    await set_ledger_time(db, sandbox=True, at=datetime(2026, 11, 4, 11, 0, tzinfo=UTC))
    hold = await holds.authorize(
        partner,
        HoldRequest(member, 40, OCCURRED_AT, "pump 3", hold_seconds=5 * 86400),
        idempotency_key=unique("hold"),
    )
    await set_ledger_time(db, sandbox=True, at=datetime(2026, 11, 6, 11, 0, tzinfo=UTC))
    first = await _expiry(db).run()
    assert first.points == 60
    assert await _balance(db, member) == 40

    await holds.void(partner, hold.hold.hold_id, "pump reset", idempotency_key=unique("void"))
    second = await _expiry(db).run()
    assert second.points == 40
    assert await _balance(db, member) == 0
    assert [lot["remaining"] for lot in await _lots(db, member)] == [0]


async def test_a_redeem_reversal_gives_back_its_lots_and_an_expired_one_as_a_new_lot(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    ledger = _ledger(db)
    soon = await _issue(ledger, partner, member, 30)
    late = await _issue(_ledger(db, TWO_MONTHS), partner, member, 50)
    redeem = await _redeem(ledger, partner, member, 60)
    by_entry = {lot["entry_id"]: lot["lot_id"] for lot in await _lots(db, member)}
    assert await _taken(db, redeem) == {by_entry[soon]: 30, by_entry[late]: 30}

    # Partly reversed while both lots live: the latest-expiring lot gets its points first.
    first = await ledger.reverse(
        partner, redeem, points=20, reason="return", idempotency_key=unique("rev")
    )
    assert await _taken(db, first.entry.entry_id) == {by_entry[late]: -20}

    moment = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)  # the first lot expired on 5 November
    await set_ledger_time(db, sandbox=True, at=moment)
    rest = await ledger.reverse(
        partner, redeem, points=None, reason="return", idempotency_key=unique("rev")
    )
    lots = await _lots(db, member)
    assert await _taken(db, rest.entry.entry_id) == {by_entry[late]: -10}
    (reinstated,) = [lot for lot in lots if lot["origin_lot_id"] is not None]
    assert reinstated["origin_lot_id"] == by_entry[soon]
    assert (reinstated["points"], reinstated["remaining"]) == (30, 30)
    assert reinstated["partner_id"] == partner
    assert (
        timedelta(0)
        <= reinstated["expires_at"] - moment - timedelta(days=30)
        < timedelta(seconds=5)
    )
    assert reinstated["cohort_at"] == lots[0]["cohort_at"]
    assert sum(lot["remaining"] for lot in lots) == await _balance(db, member) == 80


async def test_an_issue_reversal_takes_from_its_own_lot_first(db: Database) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    ledger = _ledger(db)
    await _issue(ledger, partner, member, 30)
    second = await _issue(_ledger(db, TWO_MONTHS), partner, member, 50)
    by_entry = {lot["entry_id"]: lot["lot_id"] for lot in await _lots(db, member)}
    reversal = await ledger.reverse(
        partner, second, points=40, reason="void", idempotency_key=unique("rev")
    )
    assert await _taken(db, reversal.entry.entry_id) == {by_entry[second]: 40}


async def test_a_second_run_while_one_holds_the_lock_is_refused(db: Database) -> None:
    async with db.driver_connection() as holder:
        assert await holder.fetchval("SELECT pg_try_advisory_lock(expiry_lock_class(), 0)")
        try:
            with pytest.raises(ExpiryRunInProgress):
                await _expiry(db).run()
        finally:
            await holder.execute("SELECT pg_advisory_unlock(expiry_lock_class(), 0)")
    assert (await _expiry(db).run()).points == 0


async def test_redeems_racing_the_run_are_never_expired(db: Database) -> None:
    partner = await a_partner(db)
    members = [await _member(db) for _ in range(12)]
    ledger = _ledger(db)
    for member in members:
        await _issue(ledger, partner, member, 100)
    await set_ledger_time(db, sandbox=True, at=datetime(2026, 11, 5, 11, 0, 1, tzinfo=UTC))

    async def redeem(member: str) -> int:
        try:
            await _redeem(ledger, partner, member, 60)
        except InsufficientPoints:  # the run took the points first: nothing redeemed
            return 0
        return 60

    results = await asyncio.gather(_expiry(db).run(batch_members=1), *(redeem(m) for m in members))
    run, redeemed = results[0], results[1:]
    assert isinstance(run, ExpiryRun)
    assert sum(r for r in redeemed if isinstance(r, int)) + run.points == 1200
    for member in members:
        assert await _balance(db, member) == 0
        assert sum(lot["remaining"] for lot in await _lots(db, member)) == 0


# --- the database refuses what would break the lots -----------------------------------------


async def _refused(database: Database, sqlstate: str, statement: str, *args: object) -> None:
    async with database.driver_connection() as connection:
        with pytest.raises(asyncpg.PostgresError) as refused:
            async with connection.transaction():
                await connection.execute(statement, *args)
        assert refused.value.sqlstate == sqlstate


async def test_lots_that_no_longer_add_up_to_the_balance_are_refused_at_commit(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    await _issue(_ledger(db), partner, member, 100)
    (lot,) = await _lots(db, member)
    # What remains of the lot no longer matches its consumptions either: that is checked first.
    await _refused(db, "CH106", "UPDATE lots SET remaining = 90 WHERE lot_id = $1", lot["lot_id"])
    await _refused(
        db,
        "CH105",
        "UPDATE member_balances SET balance_points = 120 WHERE member_id = $1",
        member,
    )
    await _refused(
        db,
        "CH105",
        "INSERT INTO lots (member_id, points, remaining, recorded_at, cohort_at)"
        " VALUES ($1, 5, 5, now(), now())",
        member,
    )
    assert [row["remaining"] for row in await _lots(db, member)] == [100]


async def test_a_consumption_without_its_lot_taken_is_refused_at_commit(db: Database) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    entry = await _issue(_ledger(db), partner, member, 100)
    (lot,) = await _lots(db, member)
    await _refused(
        db,
        "CH106",
        "INSERT INTO lot_consumptions (entry_id, lot_id, points) VALUES ($1, $2, 10)",
        entry,
        lot["lot_id"],
    )


async def test_a_lot_is_never_removed_and_changes_only_in_what_remains(db: Database) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    await _issue(_ledger(db), partner, member, 100)
    redeem = await _redeem(_ledger(db), partner, member, 10)
    (lot,) = await _lots(db, member)
    await _refused(db, "CH100", "DELETE FROM lots WHERE lot_id = $1", lot["lot_id"])
    await _refused(
        db,
        "CH100",
        "UPDATE lots SET expires_at = expires_at + interval '1 year' WHERE lot_id = $1",
        lot["lot_id"],
    )
    await _refused(db, "CH100", "UPDATE lots SET points = 1000 WHERE lot_id = $1", lot["lot_id"])
    await _refused(db, "CH100", "DELETE FROM lot_consumptions WHERE entry_id = $1", redeem)
    await _refused(
        db, "CH100", "UPDATE lot_consumptions SET points = 1 WHERE entry_id = $1", redeem
    )
    assert (await _lots(db, member))[0]["expires_at"] == lot["expires_at"]
