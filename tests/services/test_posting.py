"""Posting through the ledger service against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from clearhouse.domain.errors import (
    IdempotencyKeyReused,
    InsufficientPoints,
    InvalidRequest,
    NotFound,
    UnknownMember,
)
from clearhouse.domain.ledger import EntryKind
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store
from tests.services.builders import a_ledger, a_member, a_partner, points_request, unique


async def _balance(database: Database, member_id: str) -> int | None:
    async with database.driver_connection() as connection:
        return await store.member_balance(connection, member_id)


async def _entry_count(database: Database, partner_id: str) -> int:
    async with database.driver_connection() as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM entries WHERE partner_id = $1", partner_id
            )
        )


async def test_issue_credits_the_member_and_records_the_balance_after(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    posted = await a_ledger(database).issue(
        partner, points_request(member, 120), idempotency_key="k1"
    )
    assert posted.entry.kind is EntryKind.ISSUE
    assert posted.entry.member_balance_after == 120
    assert posted.replayed is False
    assert await _balance(database, member) == 120


async def test_redeem_more_than_balance_is_refused_and_writes_nothing(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=10, partner_id=partner)
    with pytest.raises(InsufficientPoints):
        await a_ledger(database).redeem(partner, points_request(member, 11), idempotency_key="r1")
    assert await _balance(database, member) == 10
    assert await _entry_count(database, partner) == 1
    # The key was not spent by the refused request: a corrected retry goes through.
    posted = await a_ledger(database).redeem(
        partner, points_request(member, 10), idempotency_key="r1"
    )
    assert posted.entry.member_balance_after == 0


async def test_unknown_member_is_refused(database: Database) -> None:
    partner = await a_partner(database)
    with pytest.raises(UnknownMember):
        await a_ledger(database).issue(partner, points_request("nobody", 5), idempotency_key="u")


async def test_same_key_same_request_replays_the_first_entry(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    first = await ledger.issue(partner, points_request(member, 7), idempotency_key="same")
    again = await ledger.issue(partner, points_request(member, 7), idempotency_key="same")
    assert again.replayed is True
    assert again.entry == first.entry
    assert await _balance(database, member) == 7


async def test_same_key_other_request_is_refused_naming_the_field(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    await ledger.issue(partner, points_request(member, 7), idempotency_key="same")
    with pytest.raises(IdempotencyKeyReused, match="points"):
        await ledger.issue(partner, points_request(member, 8), idempotency_key="same")
    assert await _balance(database, member) == 7


async def test_keys_are_per_partner(database: Database) -> None:
    a, b = await a_partner(database), await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    await ledger.issue(a, points_request(member, 1), idempotency_key="shared")
    posted = await ledger.issue(b, points_request(member, 1), idempotency_key="shared")
    assert posted.replayed is False
    assert await _balance(database, member) == 2


async def test_partial_then_full_reversal_never_exceeds_the_original(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    issued = await ledger.issue(partner, points_request(member, 100), idempotency_key="i")
    eid = issued.entry.entry_id
    part = await ledger.reverse(partner, eid, points=30, reason="returned", idempotency_key="r1")
    assert part.entry.member_balance_after == 70
    assert part.entry.reversal_of == eid
    rest = await ledger.reverse(partner, eid, points=None, reason="all", idempotency_key="r2")
    assert rest.entry.points == 70
    assert rest.entry.member_balance_after == 0
    with pytest.raises(InsufficientPoints):
        await ledger.reverse(partner, eid, points=1, reason="again", idempotency_key="r3")


async def test_reversal_of_a_redeem_gives_points_back(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=50, partner_id=partner)
    ledger = a_ledger(database)
    redeemed = await ledger.redeem(partner, points_request(member, 20), idempotency_key="r")
    back = await ledger.reverse(
        partner, redeemed.entry.entry_id, points=5, reason="refund", idempotency_key="b"
    )
    assert back.entry.member_balance_after == 35


async def test_another_partners_entry_cannot_be_reversed(database: Database) -> None:
    owner, other = await a_partner(database), await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    issued = await ledger.issue(owner, points_request(member, 10), idempotency_key="i")
    with pytest.raises(NotFound):
        await ledger.reverse(
            other, issued.entry.entry_id, points=None, reason="x", idempotency_key="x"
        )
    with pytest.raises(NotFound):
        await ledger.reverse(other, uuid.uuid4(), points=None, reason="x", idempotency_key="y")
    assert await _balance(database, member) == 10


async def test_reversing_an_issue_already_spent_is_insufficient(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    issued = await ledger.issue(partner, points_request(member, 10), idempotency_key="i")
    await ledger.redeem(partner, points_request(member, 8), idempotency_key="r")
    with pytest.raises(InsufficientPoints):
        await ledger.reverse(
            partner, issued.entry.entry_id, points=None, reason="x", idempotency_key="x"
        )
    assert await _balance(database, member) == 2


async def test_expiry_and_adjustments_move_points_against_the_coalition(database: Database) -> None:
    member = await a_member(database, balance=40)
    ledger = a_ledger(database)
    assert (await ledger.expire(member, 15)).entry.member_balance_after == 25
    assert (await ledger.adjust(member, 5, "goodwill")).entry.member_balance_after == 30
    assert (await ledger.adjust(member, -30, "correction")).entry.member_balance_after == 0
    with pytest.raises(InsufficientPoints):
        await ledger.adjust(member, -1, "too far")


@pytest.mark.parametrize("points", [0, -5, 10**12, True])
async def test_bad_points_are_refused(database: Database, points: int) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    with pytest.raises(InvalidRequest):
        await a_ledger(database).issue(partner, points_request(member, points), idempotency_key="p")
    assert await _entry_count(database, partner) == 0


async def test_two_hundred_concurrent_redemptions_of_fifty_points(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=50, partner_id=partner)
    ledger = a_ledger(database)

    async def redeem_one(n: int) -> str:
        try:
            await ledger.redeem(partner, points_request(member, 1), idempotency_key=f"c{n}")
        except InsufficientPoints:
            return "insufficient_points"
        return "ok"

    outcomes = await asyncio.gather(*(redeem_one(n) for n in range(200)))
    assert outcomes.count("ok") == 50
    assert outcomes.count("insufficient_points") == 150
    assert await _balance(database, member) == 0
    async with database.driver_connection() as connection:
        redeems = await connection.fetchval(
            "SELECT count(*) FROM entries WHERE partner_id = $1 AND kind = 'redeem'", partner
        )
    assert redeems == 50


async def test_fifty_concurrent_requests_with_one_key_make_one_entry(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    ledger = a_ledger(database)
    key = unique("key")
    posted = await asyncio.gather(
        *(ledger.issue(partner, points_request(member, 3), idempotency_key=key) for _ in range(50))
    )
    assert len({p.entry.entry_id for p in posted}) == 1
    assert len({p.entry for p in posted}) == 1
    assert sum(not p.replayed for p in posted) == 1
    assert await _balance(database, member) == 3
    assert await _entry_count(database, partner) == 1


async def test_the_database_refuses_to_update_or_delete_postings(
    dsn: str, database: Database
) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    posted = await a_ledger(database).issue(partner, points_request(member, 9), idempotency_key="i")
    connection = await asyncpg.connect(dsn)
    try:
        for statement in (
            "UPDATE postings SET amount = amount * 2 WHERE entry_id = $1",
            "DELETE FROM postings WHERE entry_id = $1",
            "UPDATE entries SET points = 1 WHERE entry_id = $1",
            "DELETE FROM entries WHERE entry_id = $1",
        ):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await connection.execute(statement, posted.entry.entry_id)
        for table in ("postings", "entries"):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await connection.execute(f"TRUNCATE {table} CASCADE")
    finally:
        await connection.close()


async def test_the_database_refuses_an_unbalanced_entry_at_commit(
    dsn: str, database: Database
) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    connection = await asyncpg.connect(dsn)
    entry_id = uuid.uuid4()
    insert_entry = (
        "INSERT INTO entries (entry_id, kind, partner_id, member_id, points, recorded_at)"
        " VALUES ($1, 'issue', $2, $3, 5, now())"
    )
    insert_postings = (
        "INSERT INTO postings (entry_id, seq, account, asset, amount) VALUES"
        " ($1, 1, $2, 'PTS', -5), ($1, 2, $3, 'PTS', 4)"
    )
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute(insert_entry, entry_id, partner, member)
        await connection.execute(
            insert_postings, entry_id, f"partner:{partner}:issued", f"member:{member}"
        )
        with pytest.raises(asyncpg.PostgresError, match="does not balance"):
            await transaction.commit()
        with pytest.raises(asyncpg.PostgresError, match="fewer than two postings"):
            await connection.execute(
                insert_entry,
                uuid.uuid4(),
                partner,
                member,
            )
        assert (
            await connection.fetchval("SELECT count(*) FROM entries WHERE entry_id = $1", entry_id)
            == 0
        )
    finally:
        await connection.close()


async def test_the_database_refuses_postings_added_to_an_existing_entry(
    dsn: str, database: Database
) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    posted = await a_ledger(database).issue(partner, points_request(member, 9), idempotency_key="i")
    connection = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.PostgresError, match="does not balance"):
            await connection.execute(
                "INSERT INTO postings (entry_id, seq, account, asset, amount)"
                " VALUES ($1, 3, $2, 'PTS', 1)",
                posted.entry.entry_id,
                f"member:{member}",
            )
    finally:
        await connection.close()


async def test_the_database_refuses_a_negative_member_balance(dsn: str, database: Database) -> None:
    member = await a_member(database, balance=3)
    connection = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="member_balance_not_negative"):
            await connection.execute(
                "UPDATE member_balances SET balance_points = -1 WHERE member_id = $1", member
            )
    finally:
        await connection.close()
    assert await _balance(database, member) == 3


async def test_a_twin_still_at_work_after_the_lock_wait_is_idempotency_key_in_use(
    database: Database, dsn: str
) -> None:
    """Only a wait on the key's own index reads as "in use"; the twin here never commits."""
    from clearhouse.domain.errors import IdempotencyKeyInUse

    partner = await a_partner(database)
    member = await a_member(database)
    twin = await asyncpg.connect(dsn)
    try:
        transaction = twin.transaction()
        await transaction.start()
        await twin.execute(
            "INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256)"
            " VALUES ($1, 'busy', '\\x00')",
            partner,
        )
        with pytest.raises(IdempotencyKeyInUse):
            await a_ledger(database).issue(
                partner, points_request(member, 1), idempotency_key="busy"
            )
        await transaction.rollback()
    finally:
        await twin.close()
    assert await _balance(database, member) == 0
