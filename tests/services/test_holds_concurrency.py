"""Holds under concurrent requests, at the edge of their time, and under retries.

Many requests at once on one hold or one member: exactly one capture or void ends a hold, the
member's available points never go below zero and no more is reserved or redeemed than the
member had, twins with one Idempotency-Key make one entry. A hold can be captured until the
last moment of its time and not after, whether or not the sweeper ran; the sweeper and a
member's own redeem never release one hold twice. Tests that move the ledger clock do it on a
database of their own (``fresh_database``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from clearhouse.domain.errors import (
    ClearhouseError,
    HoldAlreadyCaptured,
    HoldAlreadyVoided,
    HoldExpired,
    HoldNotOpen,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientPoints,
    NotFound,
)
from clearhouse.domain.holds import HoldStatus
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.holds import HoldAnswer, HoldRequest, Holds
from clearhouse.services.posting import Ledger
from tests.conftest import fresh_database
from tests.services.builders import (
    OCCURRED_AT,
    a_ledger,
    a_member,
    a_partner,
    points_request,
    unique,
)


@dataclass(frozen=True)
class MemberState:
    """What the database holds of one member, each figure read independently."""

    balance: int
    held: int
    open_holds_points: int
    postings_points: int


def holds_of(database: Database, ledger: Ledger | None = None) -> Holds:
    return Holds(database, ContractBook(database), ledger or a_ledger(database))


def a_hold_request(member: str, points: int, hold_seconds: int | None = None) -> HoldRequest:
    return HoldRequest(member, points, OCCURRED_AT, unique("basket"), hold_seconds=hold_seconds)


async def member_state(database: Database, member: str) -> MemberState:
    async with database.driver_connection() as connection:
        row = await connection.fetchrow(
            """
            SELECT b.balance_points, b.held_points,
                   (SELECT coalesce(sum(h.points), 0) FROM holds h
                     WHERE h.member_id = b.member_id AND h.status = 'open') AS open_points,
                   (SELECT coalesce(sum(p.amount), 0) FROM postings p
                     WHERE p.account = 'member:' || b.member_id AND p.asset = 'PTS')
                       AS postings_points
              FROM member_balances b WHERE b.member_id = $1
            """,
            member,
        )
    assert row is not None
    return MemberState(
        int(row["balance_points"]),
        int(row["held_points"]),
        int(row["open_points"]),
        int(row["postings_points"]),
    )


async def redeem_entries(database: Database, partner: str) -> list[tuple[UUID, int]]:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT entry_id, points FROM entries WHERE partner_id = $1 AND kind = 'redeem'",
            partner,
        )
    return [(row["entry_id"], int(row["points"])) for row in rows]


async def final_events(database: Database, hold_id: UUID) -> list[str]:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT event FROM hold_events WHERE hold_id = $1 AND final", hold_id
        )
    return [row["event"] for row in rows]


# --- many requests at once -------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(3))
async def test_fifty_concurrent_captures_and_voids_of_one_hold_end_it_once(
    database: Database, round_: int
) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=100, partner_id=partner)
    holds = holds_of(database)
    authorized = await holds.authorize(
        partner, a_hold_request(member, 40), idempotency_key=unique("a")
    )
    hold_id = authorized.hold.hold_id

    async def end(n: int) -> tuple[str, HoldAnswer | type[HoldNotOpen]]:
        """Captures (all, or part of the hold) and voids, interleaved by ``n``."""
        kind = "captured" if (n + round_) % 2 == 0 else "voided"
        try:
            if kind == "captured":
                points = None if n % 3 == 0 else 1 + n % 40
                answer = await holds.capture(partner, hold_id, points, idempotency_key=f"e{n}")
            else:
                answer = await holds.void(partner, hold_id, "cancelled", idempotency_key=f"e{n}")
        except HoldNotOpen as refused:
            return kind, type(refused)
        return kind, answer

    outcomes = await asyncio.gather(*(end(n) for n in range(50)))
    won = [(kind, answer) for kind, answer in outcomes if isinstance(answer, HoldAnswer)]
    assert len(won) == 1
    winner_kind, winner = won[0]
    assert isinstance(winner, HoldAnswer)
    expected_refusal = HoldAlreadyCaptured if winner_kind == "captured" else HoldAlreadyVoided
    assert [answer for _, answer in outcomes if not isinstance(answer, HoldAnswer)] == [
        expected_refusal
    ] * 49
    assert winner.replayed is False
    assert winner.member.held == 0

    state = await member_state(database, member)
    assert state.held == state.open_holds_points == 0
    assert state.balance == state.postings_points
    entries = await redeem_entries(database, partner)
    assert await final_events(database, hold_id) == [winner_kind]
    if winner_kind == "captured":
        assert winner.hold.status is HoldStatus.CAPTURED
        assert winner.entry is not None
        assert entries == [(winner.entry.entry_id, winner.hold.captured_points)]
        assert state.balance == 100 - (winner.hold.captured_points or 0)
    else:
        assert winner.hold.status is HoldStatus.VOIDED
        assert entries == []
        assert state.balance == 100


async def test_two_hundred_concurrent_authorizations_and_redeems_never_overcommit_a_member(
    database: Database,
) -> None:
    shop, cafe = await a_partner(database, "shop"), await a_partner(database, "cafe")
    initial = 150
    member = await a_member(database, balance=initial, partner_id=shop)
    ledger = a_ledger(database)
    holds = holds_of(database, ledger)
    done = asyncio.Event()
    seen_available: list[int] = []

    async def watch() -> None:
        """Reads the member's available points while the requests run."""
        while not done.is_set():
            state = await member_state(database, member)
            seen_available.append(state.balance - state.held)
            await asyncio.sleep(0)

    async def request(n: int) -> tuple[str, int, bool]:
        """An authorization (even ``n``) or a redeem (odd) of 1 to 3 points: (kind, points,
        whether it went through)."""
        points = 1 + n % 3
        partner = shop if n % 4 < 2 else cafe
        try:
            if n % 2 == 0:
                await holds.authorize(
                    partner, a_hold_request(member, points), idempotency_key=f"x{n}"
                )
                return "authorize", points, True
            await ledger.redeem(partner, points_request(member, points), idempotency_key=f"x{n}")
        except InsufficientPoints:
            return ("authorize" if n % 2 == 0 else "redeem"), points, False
        return "redeem", points, True

    watcher = asyncio.create_task(watch())
    try:
        outcomes = await asyncio.gather(*(request(n) for n in range(200)))
    finally:
        done.set()
        await watcher

    reserved = sum(points for kind, points, ok in outcomes if ok and kind == "authorize")
    redeemed = sum(points for kind, points, ok in outcomes if ok and kind == "redeem")
    refused = [points for _, points, ok in outcomes if not ok]
    state = await member_state(database, member)
    available = state.balance - state.held

    assert seen_available
    assert min(seen_available) >= 0
    assert reserved + redeemed <= initial
    assert state.held == state.open_holds_points == reserved
    assert state.balance == state.postings_points == initial - redeemed
    assert available == initial - reserved - redeemed
    # Available points only fell during the run: every refused request asked for more than
    # was left at its time, so more than is left now; and the demand (400) exceeded the supply.
    assert refused
    assert available < min(refused)
    redeems = await redeem_entries(database, shop) + await redeem_entries(database, cafe)
    assert sorted(points for _, points in redeems) == sorted(
        points for kind, points, ok in outcomes if ok and kind == "redeem"
    )


async def test_fifty_concurrent_captures_with_one_key_make_one_redeem_entry(
    database: Database,
) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=80, partner_id=partner)
    holds = holds_of(database)
    authorized = await holds.authorize(
        partner, a_hold_request(member, 50), idempotency_key=unique("a")
    )
    key = unique("capture")
    answers = await asyncio.gather(
        *(
            holds.capture(partner, authorized.hold.hold_id, 35, idempotency_key=key)
            for _ in range(50)
        )
    )
    assert len({replace(answer, replayed=False) for answer in answers}) == 1
    assert sum(not answer.replayed for answer in answers) == 1
    first = answers[0]
    assert first.entry is not None
    assert first.hold.captured_points == 35
    assert await redeem_entries(database, partner) == [(first.entry.entry_id, 35)]
    state = await member_state(database, member)
    assert (state.balance, state.held) == (45, 0)
    assert state.open_holds_points == 0
    assert state.balance == state.postings_points
    assert first.member.balance == 45
    assert first.member.held == 0


# --- the edge of a hold's time ---------------------------------------------------------------


async def test_a_hold_is_captured_one_second_before_its_time_and_not_one_second_after() -> None:
    async with fresh_database() as database:
        partner = await a_partner(database)
        member = await a_member(database, balance=100, partner_id=partner)
        holds = holds_of(database)
        early = await holds.authorize(
            partner, a_hold_request(member, 20, hold_seconds=600), idempotency_key="early"
        )
        late = await holds.authorize(
            partner, a_hold_request(member, 30, hold_seconds=600), idempotency_key="late"
        )
        void_early = await holds.authorize(
            partner, a_hold_request(member, 10, hold_seconds=600), idempotency_key="void-early"
        )
        void_late = await holds.authorize(
            partner, a_hold_request(member, 5, hold_seconds=600), idempotency_key="void-late"
        )

        await set_ledger_time(
            database, sandbox=True, at=early.hold.expires_at - timedelta(seconds=1)
        )
        captured = await holds.capture(partner, early.hold.hold_id, None, idempotency_key="c1")
        assert captured.hold.status is HoldStatus.CAPTURED
        assert captured.entry is not None
        assert captured.entry.points == 20
        await set_ledger_time(
            database, sandbox=True, at=void_early.hold.expires_at - timedelta(seconds=1)
        )
        voided = await holds.void(partner, void_early.hold.hold_id, None, idempotency_key="v1")
        assert voided.hold.status is HoldStatus.VOIDED

        await set_ledger_time(
            database, sandbox=True, at=void_late.hold.expires_at + timedelta(seconds=1)
        )
        with pytest.raises(HoldExpired) as expired:
            await holds.capture(partner, late.hold.hold_id, None, idempotency_key="c2")
        assert expired.value.hold_status == "expired"
        with pytest.raises(HoldExpired):
            await holds.capture(partner, late.hold.hold_id, 1, idempotency_key="c3")
        with pytest.raises(HoldExpired):
            await holds.void(partner, void_late.hold.hold_id, None, idempotency_key="v2")
        assert (await holds.hold(partner, late.hold.hold_id)).status is HoldStatus.EXPIRED

        # Refused without the sweeper having run: the lapsed holds still count as held in the
        # table until a write on the member or the sweeper releases them.
        state = await member_state(database, member)
        assert (state.balance, state.held, state.open_holds_points) == (80, 35, 35)
        assert await redeem_entries(database, partner) == [(captured.entry.entry_id, 20)]
        assert await holds.expire_due() == 2
        state = await member_state(database, member)
        assert (state.balance, state.held, state.open_holds_points) == (80, 0, 0)
        assert await final_events(database, late.hold.hold_id) == ["expired"]
        assert await final_events(database, void_late.hold.hold_id) == ["expired"]
        with pytest.raises(HoldExpired):
            await holds.capture(partner, late.hold.hold_id, None, idempotency_key="c4")


async def test_a_lapsed_hold_is_released_by_the_members_next_redeem_without_the_sweeper() -> None:
    async with fresh_database() as database:
        partner = await a_partner(database)
        member = await a_member(database, balance=50, partner_id=partner)
        holds = holds_of(database)
        ledger = a_ledger(database)
        answer = await holds.authorize(
            partner, a_hold_request(member, 50, hold_seconds=60), idempotency_key="a"
        )
        with pytest.raises(InsufficientPoints):
            await ledger.redeem(partner, points_request(member, 1), idempotency_key="r0")
        await set_ledger_time(database, sandbox=True, at=answer.hold.expires_at)
        posted = await ledger.redeem(partner, points_request(member, 50), idempotency_key="r1")
        assert posted.entry.member_balance_after == 0
        assert await final_events(database, answer.hold.hold_id) == ["expired"]
        assert await holds.expire_due() == 0
        state = await member_state(database, member)
        assert (state.balance, state.held, state.open_holds_points) == (0, 0, 0)


# --- retries and other partners ----------------------------------------------------------------


async def test_a_capture_retried_after_its_hold_ended_replays_the_stored_answer(
    database: Database,
) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=100, partner_id=partner)
    ledger = a_ledger(database)
    holds = holds_of(database, ledger)
    authorized = await holds.authorize(
        partner, a_hold_request(member, 40), idempotency_key=unique("a")
    )
    hold_id = authorized.hold.hold_id
    key = unique("capture")
    first = await holds.capture(partner, hold_id, 25, idempotency_key=key)
    assert first.replayed is False
    assert first.entry is not None
    assert (first.member.balance, first.member.held) == (75, 0)

    # The response was lost; meanwhile another hold was made and the entry partly refunded.
    with pytest.raises(HoldAlreadyCaptured):
        await holds.void(partner, hold_id, None, idempotency_key=unique("v"))
    await holds.authorize(partner, a_hold_request(member, 10), idempotency_key=unique("a"))
    await ledger.reverse(
        partner, first.entry.entry_id, points=5, reason="refund", idempotency_key=unique("r")
    )
    again = await holds.capture(partner, hold_id, 25, idempotency_key=key)
    assert again.replayed is True
    assert replace(again, replayed=False) == first

    with pytest.raises(IdempotencyKeyReused):
        await holds.capture(partner, hold_id, 24, idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused):
        await holds.capture(partner, hold_id, None, idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused):
        await holds.void(partner, hold_id, None, idempotency_key=key)
    assert await redeem_entries(database, partner) == [(first.entry.entry_id, 25)]
    state = await member_state(database, member)
    assert (state.balance, state.held) == (80, 10)


async def test_a_void_retried_after_its_hold_ended_replays_the_stored_answer(
    database: Database,
) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=100, partner_id=partner)
    holds = holds_of(database)
    authorized = await holds.authorize(
        partner, a_hold_request(member, 40), idempotency_key=unique("a")
    )
    key = unique("void")
    first = await holds.void(partner, authorized.hold.hold_id, "no stock", idempotency_key=key)
    with pytest.raises(HoldAlreadyVoided):
        await holds.capture(partner, authorized.hold.hold_id, None, idempotency_key=unique("c"))
    again = await holds.void(partner, authorized.hold.hold_id, "no stock", idempotency_key=key)
    assert again.replayed is True
    assert replace(again, replayed=False) == first
    with pytest.raises(IdempotencyKeyReused):
        await holds.void(partner, authorized.hold.hold_id, "other", idempotency_key=key)


async def test_another_partners_hold_is_not_found_for_capture_void_and_reading(
    database: Database,
) -> None:
    owner, other = await a_partner(database), await a_partner(database)
    member = await a_member(database, balance=100, partner_id=owner)
    holds = holds_of(database)
    authorized = await holds.authorize(
        owner, a_hold_request(member, 40), idempotency_key=unique("a")
    )
    hold_id = authorized.hold.hold_id
    with pytest.raises(NotFound):
        await holds.capture(other, hold_id, None, idempotency_key=unique("c"))
    with pytest.raises(NotFound):
        await holds.capture(other, hold_id, 10, idempotency_key=unique("c"))
    with pytest.raises(NotFound):
        await holds.void(other, hold_id, None, idempotency_key=unique("v"))
    with pytest.raises(NotFound):
        await holds.hold(other, hold_id)
    # Nor once it ended: whether another partner's hold exists, and how it ended, stays unsaid.
    await holds.void(owner, hold_id, None, idempotency_key=unique("v"))
    with pytest.raises(NotFound):
        await holds.capture(other, hold_id, None, idempotency_key=unique("c"))
    with pytest.raises(NotFound):
        await holds.void(other, hold_id, None, idempotency_key=unique("v"))
    with pytest.raises(NotFound):
        await holds.hold(other, hold_id)
    assert (await holds.hold(owner, hold_id)).status is HoldStatus.VOIDED
    assert (await holds.hold(None, hold_id)).status is HoldStatus.VOIDED
    assert await redeem_entries(database, other) == []
    state = await member_state(database, member)
    assert (state.balance, state.held) == (100, 0)


async def test_a_void_that_waits_too_long_on_its_hold_is_not_told_its_key_is_in_use(
    database: Database, dsn: str
) -> None:
    """A writer that keeps the hold locked (here a raw transaction standing in for a slow one)
    makes a void with a brand-new key wait until the lock timeout: whatever the answer, it is
    not that this key is being processed, for no other request ever used it; the key stays
    free for the retry."""
    partner = await a_partner(database)
    member = await a_member(database, balance=100, partner_id=partner)
    holds = holds_of(database)
    authorized = await holds.authorize(
        partner, a_hold_request(member, 40), idempotency_key=unique("a")
    )
    hold_id = authorized.hold.hold_id
    key = unique("void")
    slow_writer = await asyncpg.connect(dsn)
    try:
        transaction = slow_writer.transaction()
        await transaction.start()
        await slow_writer.execute("SELECT 1 FROM holds WHERE hold_id = $1 FOR UPDATE", hold_id)
        try:
            with pytest.raises(ClearhouseError) as refused:
                await holds.void(partner, hold_id, None, idempotency_key=key)
        finally:
            await transaction.rollback()
    finally:
        await slow_writer.close()
    assert not isinstance(refused.value, IdempotencyKeyInUse), refused.value
    voided = await holds.void(partner, hold_id, None, idempotency_key=key)
    assert voided.replayed is False
    assert voided.hold.status is HoldStatus.VOIDED


# --- the sweeper -----------------------------------------------------------------------------


async def test_the_sweeper_and_the_members_own_redeems_release_each_lapsed_hold_once() -> None:
    """Members whose holds ran out redeem all they have while sweepers run: every lapsed hold
    is released once, by the sweeper or by the member's own redeem, never by both."""
    async with fresh_database() as database:
        partner = await a_partner(database)
        ledger = a_ledger(database)
        holds = holds_of(database, ledger)
        for _ in range(3):
            await _sweep_while_members_redeem(database, partner, ledger, holds)


async def _sweep_while_members_redeem(
    database: Database, partner: str, ledger: Ledger, holds: Holds
) -> None:
    members = [await a_member(database, balance=100, partner_id=partner) for _ in range(12)]
    hold_ids: list[UUID] = []
    for member in members:
        for _ in range(3):
            answer = await holds.authorize(
                partner, a_hold_request(member, 20, hold_seconds=60), idempotency_key=unique("a")
            )
            hold_ids.append(answer.hold.hold_id)
        # One more that outlives the clock step: it must stay held.
        await holds.authorize(
            partner, a_hold_request(member, 10, hold_seconds=3600), idempotency_key=unique("a")
        )
    async with database.driver_connection() as connection:
        await connection.execute(
            "UPDATE ledger_clock SET offset_interval = offset_interval + interval '2 minutes'"
        )

    async def redeem_all_available(member: str) -> int:
        posted = await ledger.redeem(
            partner, points_request(member, 90), idempotency_key=unique("r")
        )
        assert posted.entry.member_balance_after is not None
        return posted.entry.member_balance_after

    requests: list[Coroutine[Any, Any, int]] = []
    for n, member in enumerate(members):
        if n % 3 == 0:
            requests.append(holds.expire_due())
        requests.append(redeem_all_available(member))
    results = await asyncio.gather(*requests)
    swept = [result for n, result in enumerate(results) if n % 4 == 0]
    balances_after = [result for n, result in enumerate(results) if n % 4 != 0]
    assert balances_after == [10] * len(members)
    # A hold a redeem released carries the redeem's clock reading; the sweeper's have their own.
    async with database.driver_connection() as connection:
        by_sweeper = await connection.fetchval(
            """
            SELECT count(*) FROM hold_events ev JOIN holds h USING (hold_id)
             WHERE ev.event = 'expired' AND h.hold_id = ANY($1::uuid[])
               AND NOT EXISTS (SELECT 1 FROM entries e
                                WHERE e.member_id = h.member_id AND e.kind = 'redeem'
                                  AND e.recorded_at = ev.recorded_at)
            """,
            hold_ids,
        )
    assert sum(swept) == by_sweeper
    assert await holds.expire_due() == 0

    for hold_id in hold_ids:
        assert await final_events(database, hold_id) == ["expired"]
    for member in members:
        state = await member_state(database, member)
        assert (state.balance, state.held, state.open_holds_points) == (10, 10, 10)
        assert state.balance == state.postings_points
        with pytest.raises(InsufficientPoints):
            await ledger.redeem(partner, points_request(member, 1), idempotency_key=unique("r"))


# --- as holds run out ------------------------------------------------------------------------


async def test_captures_redeems_and_authorizations_as_holds_run_out_never_deadlock() -> None:
    """Forty holds of one member run out within a few milliseconds of each other while their
    captures, redeems and new authorizations on the member arrive at once: a capture that
    takes its hold just before its time and a write that releases the same hold as lapsed just
    after must queue, never deadlock; every request ends as captured, expired or refused for
    want of points, and the member's points add up. Several rounds, the burst starting at
    different moments before the middle of the holds' run-out."""
    async with fresh_database() as database:
        for lead_ms in (0, 30, 60, 100, 150):
            await _burst_as_holds_run_out(database, lead_ms)


async def _burst_as_holds_run_out(database: Database, lead_ms: int) -> None:
    """One round: a member of its own, the clock ``lead_ms`` before the middle run-out."""
    partner = await a_partner(database)
    member = await a_member(database, balance=100_000, partner_id=partner)
    ledger = a_ledger(database)
    holds = holds_of(database, ledger)
    for _ in range(3):  # lapsed already, released by the first write that needs points
        await holds.authorize(
            partner, a_hold_request(member, 1, hold_seconds=1), idempotency_key=unique("l")
        )
    running_out = [
        (
            await holds.authorize(
                partner, a_hold_request(member, 5, hold_seconds=600), idempotency_key=f"h{n}"
            )
        ).hold
        for n in range(40)
    ]
    middle = running_out[len(running_out) // 2].expires_at
    await set_ledger_time(database, sandbox=True, at=middle - timedelta(milliseconds=lead_ms))

    async def capture(hold_id: UUID) -> str:
        try:
            await holds.capture(partner, hold_id, None, idempotency_key=unique("c"))
        except HoldExpired:
            return "expired"
        return "captured"

    async def redeem() -> str:
        await ledger.redeem(partner, points_request(member, 1), idempotency_key=unique("r"))
        return "redeemed"

    async def authorize() -> str:
        await holds.authorize(
            partner, a_hold_request(member, 1, hold_seconds=600), idempotency_key=unique("a")
        )
        return "authorized"

    requests = [capture(hold.hold_id) for hold in running_out]
    for n in range(20):
        requests.insert(2 * n + 1, redeem())
        requests.insert(4 * n + 3, authorize())
    outcomes = await asyncio.gather(*requests, return_exceptions=True)
    unexpected = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    assert unexpected == []

    state = await member_state(database, member)
    assert state.held == state.open_holds_points
    assert state.balance == state.postings_points
    captured = outcomes.count("captured")
    assert outcomes.count("redeemed") == 20
    assert state.balance == 100_000 - 5 * captured - 20
    async with database.driver_connection() as connection:
        mismatched = await connection.fetch(
            """
            SELECT h.hold_id FROM holds h LEFT JOIN entries e ON e.entry_id = h.capture_entry_id
             WHERE h.member_id = $1 AND h.status = 'captured'
               AND e.points IS DISTINCT FROM h.captured_points
            """,
            member,
        )
        finals = await connection.fetchval(
            "SELECT count(*) FROM hold_events ev JOIN holds h USING (hold_id)"
            " WHERE h.member_id = $1 AND ev.final",
            member,
        )
        ended = await connection.fetchval(
            "SELECT count(*) FROM holds WHERE member_id = $1 AND status <> 'open'", member
        )
    assert mismatched == []
    assert finals == ended
