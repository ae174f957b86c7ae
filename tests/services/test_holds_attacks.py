"""Raw SQL against the run's database, trying to break the rules of holds; each is refused.

The services keep ``held_points`` equal to the sum of the member's open holds, a hold ends once
and its events are never changed. These tests go around the services, as a careless operator or
a defect would, and check that the database itself says no, with the SQLSTATE of its rule:
``CH103`` (held points that no open holds explain, checked at commit), ``CH104`` (a hold ended
without its final event, or captured without its own redeem entry of the captured points, at
commit), ``CH100`` (a hold changed
other than from open to its end, or an event changed), ``23514`` (the CHECK on held points) and
``23505`` (a second final event for a hold). Each test builds its own hold through the services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg
import pytest

from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.holds import HoldAnswer, HoldRequest, Holds
from tests.conftest import _dsn, fresh_database
from tests.services.builders import OCCURRED_AT, a_ledger, a_member, a_partner, unique

HELD_MISMATCH = "CH103"
HOLD_UNRECORDED = "CH104"
APPEND_ONLY = "CH100"
CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True)
class Scene:
    """A member with 100 points, 30 of them held by an open hold of ``partner``."""

    holds: Holds
    partner: str
    member: str
    hold: HoldAnswer


@dataclass(frozen=True)
class Points:
    balance: int
    held: int


async def a_scene(database: Database) -> Scene:
    partner = await a_partner(database)
    member = await a_member(database, balance=100, partner_id=partner)
    holds = Holds(database, ContractBook(database), a_ledger(database))
    answer = await holds.authorize(
        partner,
        HoldRequest(member, 30, OCCURRED_AT, "basket 1", hold_seconds=3600),
        idempotency_key=unique("hold"),
    )
    return Scene(holds, partner, member, answer)


@pytest.fixture
async def raw(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the attacker's own, in autocommit."""
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def _points(connection: asyncpg.Connection, member: str) -> Points:
    row = await connection.fetchrow(
        "SELECT balance_points, held_points FROM member_balances WHERE member_id = $1", member
    )
    assert row is not None
    return Points(int(row["balance_points"]), int(row["held_points"]))


async def _hold_row(connection: asyncpg.Connection, hold_id: UUID) -> tuple[object, ...]:
    row = await connection.fetchrow(
        """
        SELECT status, points, member_id, expires_at, closed_at, captured_points,
               capture_entry_id FROM holds WHERE hold_id = $1
        """,
        hold_id,
    )
    assert row is not None
    return tuple(row.values())


async def _events(connection: asyncpg.Connection, hold_id: UUID) -> list[tuple[object, ...]]:
    rows = await connection.fetch(
        """
        SELECT event, final, recorded_at, points, released_points, member_balance_after,
               member_held_after, entry_id, reason
          FROM hold_events WHERE hold_id = $1 ORDER BY final
        """,
        hold_id,
    )
    return [tuple(row.values()) for row in rows]


async def _refused_at_commit(
    connection: asyncpg.Connection, sqlstate: str, *statements: tuple[str, tuple[object, ...]]
) -> None:
    """Each statement is let through; the commit fails with ``sqlstate`` and undoes them."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        for statement, arguments in statements:
            await connection.execute(statement, *arguments)
    except BaseException:
        await transaction.rollback()
        raise
    with pytest.raises(asyncpg.PostgresError) as refused:
        await transaction.commit()
    assert refused.value.sqlstate == sqlstate


async def _refused_at_once(
    connection: asyncpg.Connection, sqlstate: str, statement: str, *arguments: object
) -> asyncpg.PostgresError:
    with pytest.raises(asyncpg.PostgresError) as refused:
        await connection.execute(statement, *arguments)
    assert refused.value.sqlstate == sqlstate
    return refused.value


# --- held points ---------------------------------------------------------------------------


async def test_raising_held_points_with_no_hold_behind_them_is_refused_at_commit(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    before = await _points(raw, scene.member)
    assert before == Points(100, 30)
    await _refused_at_commit(
        raw,
        HELD_MISMATCH,
        (
            "UPDATE member_balances SET held_points = held_points + 5 WHERE member_id = $1",
            (scene.member,),
        ),
    )
    assert await _points(raw, scene.member) == before


async def test_lowering_held_points_while_the_hold_stays_open_is_refused_at_commit(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    await _refused_at_commit(
        raw,
        HELD_MISMATCH,
        (
            "UPDATE member_balances SET held_points = held_points - 30 WHERE member_id = $1",
            (scene.member,),
        ),
    )
    assert await _points(raw, scene.member) == Points(100, 30)


async def test_held_points_above_the_balance_are_refused_by_the_check(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    error = await _refused_at_once(
        raw,
        CHECK_VIOLATION,
        "UPDATE member_balances SET held_points = balance_points + 1 WHERE member_id = $1",
        scene.member,
    )
    assert isinstance(error, asyncpg.CheckViolationError)
    assert error.constraint_name == "member_held_within_balance"
    assert await _points(raw, scene.member) == Points(100, 30)


async def test_a_balance_below_the_held_points_is_refused_by_the_check(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    error = await _refused_at_once(
        raw,
        CHECK_VIOLATION,
        "UPDATE member_balances SET balance_points = 29 WHERE member_id = $1",
        scene.member,
    )
    assert isinstance(error, asyncpg.CheckViolationError)
    assert error.constraint_name == "member_held_within_balance"
    assert await _points(raw, scene.member) == Points(100, 30)


async def test_negative_held_points_are_refused_by_the_check(
    database: Database, raw: asyncpg.Connection
) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=10, partner_id=partner)
    error = await _refused_at_once(
        raw,
        CHECK_VIOLATION,
        "UPDATE member_balances SET held_points = -1 WHERE member_id = $1",
        member,
    )
    assert isinstance(error, asyncpg.CheckViolationError)
    assert error.constraint_name == "member_held_within_balance"
    assert await _points(raw, member) == Points(10, 0)


async def test_an_open_hold_written_without_reserving_its_points_is_refused_at_commit(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    forged = uuid4()
    await _refused_at_commit(
        raw,
        HELD_MISMATCH,
        (
            """
            INSERT INTO holds (hold_id, partner_id, member_id, points, contract_version,
                               reference, occurred_at, created_at, expires_at)
            SELECT $1, partner_id, member_id, 20, contract_version, 'forged', occurred_at,
                   created_at, expires_at FROM holds WHERE hold_id = $2
            """,
            (forged, scene.hold.hold.hold_id),
        ),
    )
    assert await raw.fetchval("SELECT count(*) FROM holds WHERE hold_id = $1", forged) == 0
    assert await _points(raw, scene.member) == Points(100, 30)


# --- a hold's status -----------------------------------------------------------------------


async def test_closing_a_hold_without_releasing_its_points_is_refused_at_commit(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    before = await _hold_row(raw, hold_id)
    for status in ("voided", "expired"):
        # Its final event written too, so that only the points left held give it away.
        await _refused_at_commit(
            raw,
            HELD_MISMATCH,
            (
                "UPDATE holds SET status = $2, closed_at = now(), metadata = NULL"
                " WHERE hold_id = $1",
                (hold_id, status),
            ),
            (
                "INSERT INTO hold_events (hold_id, event, recorded_at, points)"
                " VALUES ($1, $2, now(), 30)",
                (hold_id, status),
            ),
        )
    assert await _hold_row(raw, hold_id) == before
    assert await _points(raw, scene.member) == Points(100, 30)
    assert (await scene.holds.hold(scene.partner, hold_id)).status == "open"


async def test_a_voided_hold_cannot_be_opened_again(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    await scene.holds.void(scene.partner, hold_id, "changed mind", idempotency_key=unique("v"))
    before = await _hold_row(raw, hold_id)
    # Re-opened together with its points held again: consistent for the held-points check, so
    # only the rule "a hold changes once" can refuse it.
    transaction = raw.transaction()
    await transaction.start()
    try:
        await raw.execute(
            "UPDATE member_balances SET held_points = held_points + 30 WHERE member_id = $1",
            scene.member,
        )
        await _refused_at_once(
            raw,
            APPEND_ONLY,
            "UPDATE holds SET status = 'open', closed_at = NULL WHERE hold_id = $1",
            hold_id,
        )
    finally:
        await transaction.rollback()
    assert await _hold_row(raw, hold_id) == before
    assert await _points(raw, scene.member) == Points(100, 0)


@pytest.mark.parametrize(
    "change",
    [
        "points = points + 1",
        "points = 1",
        "member_id = member_id || '-x'",
        "expires_at = expires_at + interval '1 day'",
        "reference = 'rewritten'",
    ],
)
async def test_what_an_open_hold_was_authorized_with_never_changes(
    database: Database, raw: asyncpg.Connection, change: str
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    before = await _hold_row(raw, hold_id)
    await _refused_at_once(
        raw, APPEND_ONLY, f"UPDATE holds SET {change} WHERE hold_id = $1", hold_id
    )
    assert await _hold_row(raw, hold_id) == before


@pytest.mark.parametrize(
    "change",
    [
        "points = points + 1",
        "captured_points = captured_points - 1",
        "status = 'voided', captured_points = NULL, capture_entry_id = NULL",
        "closed_at = closed_at + interval '1 hour'",
    ],
)
async def test_a_captured_hold_never_changes(
    database: Database, raw: asyncpg.Connection, change: str
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    await scene.holds.capture(scene.partner, hold_id, 20, idempotency_key=unique("c"))
    before = await _hold_row(raw, hold_id)
    await _refused_at_once(
        raw, APPEND_ONLY, f"UPDATE holds SET {change} WHERE hold_id = $1", hold_id
    )
    assert await _hold_row(raw, hold_id) == before


async def test_a_hold_is_never_deleted(database: Database, raw: asyncpg.Connection) -> None:
    open_scene = await a_scene(database)
    voided_scene = await a_scene(database)
    await voided_scene.holds.void(
        voided_scene.partner,
        voided_scene.hold.hold.hold_id,
        None,
        idempotency_key=unique("v"),
    )
    for scene in (open_scene, voided_scene):
        hold_id = scene.hold.hold.hold_id
        before = await _hold_row(raw, hold_id)
        await _refused_at_once(raw, APPEND_ONLY, "DELETE FROM holds WHERE hold_id = $1", hold_id)
        assert await _hold_row(raw, hold_id) == before


FORGED_ENDINGS = {
    "captured, naming the member's issue entry": (
        "UPDATE holds SET status = 'captured', closed_at = now(), metadata = NULL,"
        " captured_points = 30, capture_entry_id = (SELECT entry_id FROM entries"
        " WHERE member_id = holds.member_id AND kind = 'issue') WHERE hold_id = $1"
    ),
    "voided, with no voided event": (
        "UPDATE holds SET status = 'voided', closed_at = now(), metadata = NULL WHERE hold_id = $1"
    ),
}
"""How a hold is ended by hand, around the functions that write its record."""


@pytest.mark.parametrize("forged", sorted(FORGED_ENDINGS))
async def test_a_hold_ends_only_with_its_own_event_and_entry(forged: str) -> None:
    """Ended by raw SQL, with its points released so that the held-points check agrees: as
    captured, pointing at the member's issue entry instead of a redeem of its 30 points; as
    voided, with no event. The hold would read ended while nothing was redeemed or recorded,
    so the database must refuse it. (On a database of its own: if it is not refused, the
    damage stays there.)"""
    async with fresh_database() as database:
        scene = await a_scene(database)
        hold_id = scene.hold.hold.hold_id
        connection = await asyncpg.connect(_dsn(database.engine.url.render_as_string(False)))
        try:
            before = (await _hold_row(connection, hold_id), await _events(connection, hold_id))
            transaction = connection.transaction()
            await transaction.start()
            try:
                await connection.execute(FORGED_ENDINGS[forged], hold_id)
                await connection.execute(
                    "UPDATE member_balances SET held_points = held_points - 30"
                    " WHERE member_id = $1",
                    scene.member,
                )
            except BaseException:
                await transaction.rollback()
                raise
            with pytest.raises(asyncpg.PostgresError) as refused:
                await transaction.commit()
            assert refused.value.sqlstate == HOLD_UNRECORDED
            after = (await _hold_row(connection, hold_id), await _events(connection, hold_id))
            assert after == before
            assert await _points(connection, scene.member) == Points(100, 30)
        finally:
            await connection.close()


# --- a hold's events -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE hold_events SET points = points + 1 WHERE hold_id = $1",
        "UPDATE hold_events SET member_held_after = 0 WHERE hold_id = $1",
        "UPDATE hold_events SET event = 'voided' WHERE hold_id = $1 AND event = 'captured'",
        "DELETE FROM hold_events WHERE hold_id = $1",
        "DELETE FROM hold_events WHERE hold_id = $1 AND final",
    ],
)
async def test_hold_events_are_never_changed_or_deleted(
    database: Database, raw: asyncpg.Connection, statement: str
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    await scene.holds.capture(scene.partner, hold_id, None, idempotency_key=unique("c"))
    before = await _events(raw, hold_id)
    assert [event[0] for event in before] == ["authorized", "captured"]
    await _refused_at_once(raw, APPEND_ONLY, statement, hold_id)
    assert await _events(raw, hold_id) == before


@pytest.mark.parametrize(
    "statement", ["TRUNCATE holds CASCADE", "TRUNCATE hold_events", "TRUNCATE hold_events CASCADE"]
)
async def test_holds_and_their_events_are_never_truncated(
    database: Database, raw: asyncpg.Connection, statement: str
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    before = (await _hold_row(raw, hold_id), await _events(raw, hold_id))
    await _refused_at_once(raw, APPEND_ONLY, statement)
    assert (await _hold_row(raw, hold_id), await _events(raw, hold_id)) == before


@pytest.mark.parametrize("end", ["voided", "captured", "expired"])
async def test_a_hold_has_one_final_event(
    database: Database, raw: asyncpg.Connection, end: str
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    await scene.holds.void(scene.partner, hold_id, "done", idempotency_key=unique("v"))
    before = await _events(raw, hold_id)
    error = await _refused_at_once(
        raw,
        UNIQUE_VIOLATION,
        "INSERT INTO hold_events (hold_id, event, recorded_at, points) VALUES ($1, $2, now(), 30)",
        hold_id,
        end,
    )
    assert isinstance(error, asyncpg.UniqueViolationError)
    assert error.constraint_name == "hold_events_pkey"
    assert await _events(raw, hold_id) == before


async def test_a_hold_has_one_authorization_event(
    database: Database, raw: asyncpg.Connection
) -> None:
    scene = await a_scene(database)
    hold_id = scene.hold.hold.hold_id
    before = await _events(raw, hold_id)
    error = await _refused_at_once(
        raw,
        UNIQUE_VIOLATION,
        "INSERT INTO hold_events (hold_id, event, recorded_at, points)"
        " VALUES ($1, 'authorized', now(), 30)",
        hold_id,
    )
    assert isinstance(error, asyncpg.UniqueViolationError)
    assert error.constraint_name == "hold_events_pkey"
    assert await _events(raw, hold_id) == before
