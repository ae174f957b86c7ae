"""Lots under random issue / redeem / hold / capture / void / reversal / expiry / clock steps.

After every step, on the real database: the ledger's invariants (the lot remainders are the
balance, each lot is its points less its consumptions); a debit took exactly the earliest points
no hold reserves (checked against the member's lots as they were before it); no lot past its time
keeps points beyond what holds reserve after a run; an expiry took only lots past their time;
and every month that has ended settles, its roll-forward closing at the members' balances and
its cohorts of issue months at what the lots hold (a settlement that does not add up is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import ClassVar, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.errors import HoldNotOpen, InsufficientPoints
from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy, add_months
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry
from clearhouse.services.holds import HoldRequest, Holds
from clearhouse.services.posting import Ledger
from clearhouse.statements.model import CoalitionStatement
from clearhouse.storage import ledger as ledger_store
from tests.services.builders import OCCURRED_AT, ZONE, contract_toml, points_request, unique
from tests.services.test_holds_state_machine import a_database_of_its_own

T = TypeVar("T")
START = datetime(2026, 10, 20, 10, 0, tzinfo=UTC)
POLICY = ExpiryPolicy(mode=ExpiryMode.FIXED, months=1, align="exact")
MEMBERS = 2
BERLIN = ZoneInfo(ZONE)
KEY = CoalitionKey.of(Ed25519PrivateKey.from_private_bytes(bytes(32)))


class LotsMachine(RuleBasedStateMachine):
    issues = Bundle("issues")
    redeems = Bundle("redeems")
    holds = Bundle("holds")

    database_url: ClassVar[str]
    clock: ClassVar[list[datetime]]
    """The ledger clock of the shared database: it only moves forward, over every run."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.database = Database.for_url(self.database_url, pool_size=2)
        contracts = ContractBook(self.database)
        self.ledger = Ledger(self.database, contracts, ZONE, POLICY)
        self.service = Holds(self.database, contracts, self.ledger)
        self.expiry = Expiry(self.database, self.service, ZONE)
        self.clearing = Clearing(self.database, zone=BERLIN, key=KEY)
        run = unique("lm")
        self.partner = f"{run}-p"
        self.members = [f"{run}-m{n}" for n in range(MEMBERS)]
        self._run(self._open())

    async def _open(self) -> None:
        await load_contracts(
            self.database, [(f"{self.partner}.toml", contract_toml(self.partner).encode())]
        )
        await enrol_members(self.database, self.members)
        await set_ledger_time(self.database, sandbox=True, at=self.clock[0])

    def teardown(self) -> None:
        try:
            self._run(self.database.dispose())
        finally:
            self.loop.close()

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self.loop.run_until_complete(wrapped())

    async def _fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        async with self.database.driver_connection() as connection:
            return [dict(row) for row in await connection.fetch(query, *args)]

    def _expected_take(self, member: str, points: int) -> dict[int, int]:
        """The lots a debit of ``points`` must take now: past the points holds reserve."""
        lots = self._run(
            self._fetch(
                "SELECT lot_id, remaining FROM lots WHERE member_id = $1 AND remaining > 0"
                " ORDER BY expires_at NULLS LAST, recorded_at, entry_id NULLS LAST, lot_id",
                member,
            )
        )
        (held,) = self._run(
            self._fetch("SELECT held_points FROM member_balances WHERE member_id = $1", member)
        )
        skip, left, taken = int(str(held["held_points"])), points, {}
        for lot in lots:
            free = int(str(lot["remaining"]))
            reserved = min(skip, free)
            skip -= reserved
            take = min(free - reserved, left)
            if take:
                taken[int(str(lot["lot_id"]))] = take
                left -= take
        return taken

    def _taken(self, entry_id: UUID) -> dict[int, int]:
        rows = self._run(
            self._fetch("SELECT lot_id, points FROM lot_consumptions WHERE entry_id = $1", entry_id)
        )
        return {int(str(r["lot_id"])): int(str(r["points"])) for r in rows}

    @rule(target=issues, member=st.integers(0, MEMBERS - 1), points=st.integers(1, 300))
    def issue(self, member: int, points: int) -> UUID:
        posted = self._run(
            self.ledger.issue(
                self.partner,
                points_request(self.members[member], points),
                idempotency_key=unique("i"),
            )
        )
        return posted.entry.entry_id

    @rule(target=redeems, member=st.integers(0, MEMBERS - 1), points=st.integers(1, 300))
    def redeem(self, member: int, points: int) -> UUID | None:
        expected = self._expected_take(self.members[member], points)
        try:
            posted = self._run(
                self.ledger.redeem(
                    self.partner,
                    points_request(self.members[member], points),
                    idempotency_key=unique("r"),
                )
            )
        except InsufficientPoints:
            return None
        # Lapsed holds a redeem releases change what it may take: compare only when none did.
        if not self._run(
            self._fetch(
                "SELECT 1 FROM hold_events e JOIN holds h USING (hold_id)"
                " WHERE h.member_id = $1 AND e.event = 'expired' AND e.recorded_at = $2",
                self.members[member],
                posted.entry.recorded_at,
            )
        ):
            assert self._taken(posted.entry.entry_id) == expected
        return posted.entry.entry_id

    @rule(target=holds, member=st.integers(0, MEMBERS - 1), points=st.integers(1, 200))
    def authorize(self, member: int, points: int) -> UUID | None:
        try:
            answer = self._run(
                self.service.authorize(
                    self.partner,
                    HoldRequest(self.members[member], points, OCCURRED_AT, "pos", 3 * 86400),
                    idempotency_key=unique("h"),
                )
            )
        except InsufficientPoints:
            return None
        return answer.hold.hold_id

    @rule(hold=holds, capture=st.booleans())
    def end_hold(self, hold: UUID | None, capture: bool) -> None:
        if hold is None:
            return
        # A hold ended already, or expired, refuses: the hold's own rules, tested elsewhere.
        with contextlib.suppress(HoldNotOpen):
            if capture:
                self._run(
                    self.service.capture(self.partner, hold, None, idempotency_key=unique("c"))
                )
            else:
                self._run(self.service.void(self.partner, hold, None, idempotency_key=unique("v")))

    @rule(entry=st.one_of(issues, redeems), share=st.sampled_from([None, 1, 5]))
    def reverse(self, entry: UUID | None, share: int | None) -> None:
        if entry is None:
            return
        with contextlib.suppress(InsufficientPoints):
            self._run(
                self.ledger.reverse(
                    self.partner, entry, points=share, reason="r", idempotency_key=unique("x")
                )
            )

    @rule(days=st.integers(1, 25))
    def pass_time(self, days: int) -> None:
        self.clock[0] += timedelta(days=days)
        self._run(set_ledger_time(self.database, sandbox=True, at=self.clock[0]))

    @rule()
    def run_expiry(self) -> None:
        self._run(self.expiry.run())
        overdue = self._run(
            self._fetch(
                """
                SELECT b.member_id, b.held_points,
                       (SELECT coalesce(sum(l.remaining), 0) FROM lots l
                         WHERE l.member_id = b.member_id AND l.expires_at <= ledger_now())
                           AS due
                  FROM member_balances b WHERE b.member_id = ANY ($1)
                """,
                self.members,
            )
        )
        for row in overdue:
            assert int(str(row["due"])) <= int(str(row["held_points"])), row

    @rule()
    def settle_the_months_that_ended(self) -> None:
        month = START.astimezone(BERLIN).replace(day=1, hour=0, minute=0, second=0)
        while (after := add_months(month.replace(tzinfo=None), 1).replace(tzinfo=BERLIN)) <= (
            self.clock[0]
        ):
            settled = self._run(self.clearing.settle(f"{month:%Y-%m}"))
            coalition = next(s.body() for s in settled.statements if s.party == "coalition")
            assert isinstance(coalition, CoalitionStatement)
            roll = coalition.points_roll_forward
            assert roll.closing == roll.member_balances_at_cut_off
            outstanding = sum(c.outstanding for c in coalition.breakage_cohorts)
            assert outstanding == roll.member_balances_at_cut_off
            month = after

    @invariant()
    def the_ledger_and_its_lots_agree(self) -> None:
        async def violations() -> list[str]:
            async with self.database.driver_connection() as connection:
                return await ledger_store.invariant_violations(connection)

        assert self._run(violations()) == []
        early = self._run(
            self._fetch(
                """
                SELECT c.entry_id FROM lot_consumptions c
                  JOIN entries e ON e.entry_id = c.entry_id JOIN lots l ON l.lot_id = c.lot_id
                 WHERE e.kind = 'expiry' AND e.member_id = ANY ($1)
                   AND (l.expires_at IS NULL OR l.expires_at > e.recorded_at)
                """,
                self.members,
            )
        )
        assert early == []


def test_lots_keep_their_rules_over_random_operations() -> None:
    with a_database_of_its_own() as url:

        class OnItsOwnDatabase(LotsMachine):
            database_url = url
            clock: ClassVar[list[datetime]] = [START]

        run_state_machine_as_test(
            OnItsOwnDatabase, settings=settings(max_examples=20, stateful_step_count=25)
        )
