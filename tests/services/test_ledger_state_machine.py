"""The ledger service against a pure-Python model, driven by random sequences of operations.

A Hypothesis state machine issues, redeems, reverses (whole, partial, and reversals that must
be refused), expires, adjusts and erases members' personal data across 3 partners (each with a
contract in force) and 20 members of its own, on the run's
real database. After every step the database must satisfy ``invariant_violations`` (over the
whole ledger, whoever wrote to it) and hold exactly the balances and reversed points of the model.

The service is async and the state machine is not: each machine runs the service in an event
loop of its own, on a database pool of its own, both closed in ``teardown``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from clearhouse.config import SANDBOX_MASTER_KEY
from clearhouse.domain.errors import (
    ClearhouseError,
    InsufficientPoints,
    InvalidRequest,
    MemberErased,
    NotFound,
)
from clearhouse.domain.ledger import EntryKind
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.members import Members
from clearhouse.services.posting import PostedEntry
from clearhouse.storage import ledger as store
from tests.services.builders import a_ledger, contract_toml, points_request, unique

PARTNERS = 3
MEMBERS = 20

T = TypeVar("T")
Send = Callable[[], Coroutine[Any, Any, PostedEntry]]

partner_indexes = st.integers(min_value=0, max_value=PARTNERS - 1)
member_indexes = st.integers(min_value=0, max_value=MEMBERS - 1)
amounts = st.integers(min_value=1, max_value=120)
shares = st.one_of(
    st.integers(min_value=1, max_value=100), st.integers(min_value=101, max_value=125)
)
"""How much of what there is a request asks for, in percent; above 100 it asks too much."""
reversal_shares = st.one_of(st.none(), shares)
"""``None`` reverses all that remains."""


def share_of(available: int, percent: int) -> int:
    """``percent`` of ``available`` (at least 1); above 100, ``percent - 100`` more than that."""
    if percent > 100:
        return available + percent - 100
    return max(1, available * percent // 100)


@dataclass
class Original:
    """An issue or redeem as the model knows it."""

    kind: EntryKind
    partner: str
    member: str
    points: int
    reversed: int = 0

    @property
    def remaining(self) -> int:
        return self.points - self.reversed


@dataclass(frozen=True)
class Snapshot:
    """What the database holds for this machine's members and partners."""

    balances: dict[str, int]
    entries: int
    postings: int
    idempotency_keys: int


class LedgerMachine(RuleBasedStateMachine):
    issues = Bundle("issues")
    redeems = Bundle("redeems")
    reversals = Bundle("reversals")
    operator_entries = Bundle("operator_entries")
    """Expiries and adjustments."""

    database_url: ClassVar[str]
    """Set by the test on a subclass: the run's database."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        try:
            self.database = Database.for_url(self.database_url, pool_size=2)
            self.ledger = a_ledger(self.database)
            self.member_service = Members(
                self.database, ContractBook(self.database), SANDBOX_MASTER_KEY
            )
            run = unique("sm")
            self.partners = [f"{run}-p{n}" for n in range(PARTNERS)]
            self.members = [f"{run}-m{n}" for n in range(MEMBERS)]
            self._run(self._open_coalition())
            self.violations_before = self._run(self._violations())
        except BaseException:
            self.teardown()
            raise
        # The model.
        self.balances = dict.fromkeys(self.members, 0)
        self.erased: set[str] = set()
        self.originals: dict[UUID, Original] = {}
        self.reversal_partner: dict[UUID, str] = {}
        self.entries = 0
        self.idempotency_keys = 0
        # How to send each recorded partner request again, under its own key.
        self.retries: dict[UUID, Send] = {}

    def teardown(self) -> None:
        try:
            if hasattr(self, "database"):
                self._run(self.database.dispose())
        finally:
            self.loop.close()

    async def _open_coalition(self) -> None:
        await load_contracts(
            self.database,
            [(f"{partner}.toml", contract_toml(partner).encode()) for partner in self.partners],
        )
        await enrol_members(self.database, self.members)

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self.loop.run_until_complete(wrapped())

    def _member(self, index: int, *, holder: bool) -> str:
        """Member ``index``; when ``holder``, the index picks among members who hold points."""
        holders = [m for m in self.members if self.balances[m] > 0]
        if holder and holders:
            return holders[index % len(holders)]
        return self.members[index]

    # --- what the database holds -----------------------------------------------------------

    async def _violations(self) -> list[str]:
        async with self.database.driver_connection() as connection:
            return await store.invariant_violations(connection)

    async def _snapshot(self) -> Snapshot:
        async with self.database.driver_connection() as connection:
            rows = await connection.fetch(
                "SELECT member_id, balance_points FROM member_balances WHERE member_id = ANY($1)",
                self.members,
            )
            counts = await connection.fetchrow(
                """
                SELECT (SELECT count(*) FROM entries WHERE member_id = ANY($1)) AS entries,
                       (SELECT count(*) FROM postings p JOIN entries e USING (entry_id)
                         WHERE e.member_id = ANY($1)) AS postings,
                       (SELECT count(*) FROM idempotency_keys
                         WHERE partner_id = ANY($2)) AS idempotency_keys
                """,
                self.members,
                self.partners,
            )
        return Snapshot(
            balances={row["member_id"]: int(row["balance_points"]) for row in rows},
            entries=int(counts["entries"]),
            postings=int(counts["postings"]),
            idempotency_keys=int(counts["idempotency_keys"]),
        )

    def _model(self) -> tuple[object, ...]:
        return copy.deepcopy(
            (self.balances, self.originals, self.entries, self.idempotency_keys, self.erased)
        )

    def _refused(
        self, error: type[ClearhouseError], request: Callable[[], Awaitable[object]]
    ) -> None:
        """``request`` fails with ``error`` and changes neither the database nor the model."""
        model_before = self._model()
        before = self._run(self._snapshot())
        with pytest.raises(error):
            self._run(request())
        assert self._run(self._snapshot()) == before
        assert self._model() == model_before

    # --- partners' requests ----------------------------------------------------------------

    def _recorded(
        self, kind: EntryKind, partner: str, member: str, points: int, send: Send
    ) -> UUID:
        posted = self._run(send())
        self.balances[member] += points if kind is EntryKind.ISSUE else -points
        assert posted.replayed is False
        assert posted.entry.kind is kind
        assert posted.entry.points == points
        assert posted.entry.member_balance_after == self.balances[member]
        self.originals[posted.entry.entry_id] = Original(kind, partner, member, points)
        self.entries += 1
        self.idempotency_keys += 1
        self.retries[posted.entry.entry_id] = send
        return posted.entry.entry_id

    @initialize(
        target=issues,
        issues=st.lists(st.tuples(partner_indexes, member_indexes, amounts), max_size=10),
    )
    def issue_some_first(self, issues: list[tuple[int, int, int]]) -> object:
        """Start with members who hold points, so that the other rules have work."""
        return multiple(*(self.issue(*issue) for issue in issues))

    @rule(target=issues, partner=partner_indexes, member=member_indexes, points=amounts)
    def issue(self, partner: int, member: int, points: int) -> object:
        p, m, key = self.partners[partner], self.members[member], unique("issue")

        def send() -> Coroutine[Any, Any, PostedEntry]:
            return self.ledger.issue(p, points_request(m, points), idempotency_key=key)

        if m in self.erased:
            self._refused(MemberErased, send)
            return multiple()
        return self._recorded(EntryKind.ISSUE, p, m, points, send)

    @rule(
        target=redeems,
        partner=partner_indexes,
        member=member_indexes,
        holder=st.booleans(),
        share=shares,
    )
    def redeem(self, partner: int, member: int, holder: bool, share: int) -> object:
        p, m, key = self.partners[partner], self._member(member, holder=holder), unique("redeem")
        points = share_of(self.balances[m], share)

        def send() -> Coroutine[Any, Any, PostedEntry]:
            return self.ledger.redeem(p, points_request(m, points), idempotency_key=key)

        if m in self.erased:
            self._refused(MemberErased, send)
            return multiple()
        if points > self.balances[m]:
            self._refused(InsufficientPoints, send)
            return multiple()
        return self._recorded(EntryKind.REDEEM, p, m, points, send)

    def _reverse(self, original: UUID, share: int | None) -> object:
        """The owner reverses all (``share`` None) or part of an issue or redeem."""
        entry = self.originals[original]
        points = None if share is None else share_of(entry.remaining, share)
        key = unique("reverse")

        def send() -> Coroutine[Any, Any, PostedEntry]:
            return self.ledger.reverse(
                entry.partner, original, points=points, reason="returned", idempotency_key=key
            )

        reversed_now = entry.remaining if points is None else points
        member_delta = -reversed_now if entry.kind is EntryKind.ISSUE else reversed_now
        if (
            reversed_now == 0
            or reversed_now > entry.remaining
            or self.balances[entry.member] + member_delta < 0
        ):
            self._refused(InsufficientPoints, send)
            return multiple()
        posted = self._run(send())
        self.balances[entry.member] += member_delta
        entry.reversed += reversed_now
        self.entries += 1
        self.idempotency_keys += 1
        assert posted.replayed is False
        assert posted.entry.kind is EntryKind.REVERSAL
        assert posted.entry.reversal_of == original
        assert posted.entry.points == reversed_now
        assert posted.entry.member_balance_after == self.balances[entry.member]
        self.reversal_partner[posted.entry.entry_id] = entry.partner
        self.retries[posted.entry.entry_id] = send
        return posted.entry.entry_id

    @rule(target=reversals, original=issues, share=reversal_shares)
    def reverse_an_issue(self, original: UUID, share: int | None) -> object:
        return self._reverse(original, share)

    @rule(target=reversals, original=redeems, share=reversal_shares)
    def reverse_a_redeem(self, original: UUID, share: int | None) -> object:
        return self._reverse(original, share)

    @rule(
        original=st.one_of(issues, redeems),
        shift=st.integers(min_value=1, max_value=PARTNERS - 1),
    )
    def reverse_another_partners_entry(self, original: UUID, shift: int) -> None:
        owner = self.partners.index(self.originals[original].partner)
        other = self.partners[(owner + shift) % PARTNERS]
        self._refused(
            NotFound,
            lambda: self.ledger.reverse(
                other, original, points=None, reason="not mine", idempotency_key=unique("x")
            ),
        )

    @rule(reversal=reversals, points=st.one_of(st.none(), amounts))
    def reverse_a_reversal(self, reversal: UUID, points: int | None) -> None:
        self._refused(
            InvalidRequest,
            lambda: self.ledger.reverse(
                self.reversal_partner[reversal],
                reversal,
                points=points,
                reason="undo the undo",
                idempotency_key=unique("x"),
            ),
        )

    @rule(entry=operator_entries, partner=partner_indexes, points=st.one_of(st.none(), amounts))
    def reverse_an_operator_entry(self, entry: UUID, partner: int, points: int | None) -> None:
        """Expiries and adjustments belong to no partner: to a partner they do not exist."""
        self._refused(
            NotFound,
            lambda: self.ledger.reverse(
                self.partners[partner],
                entry,
                points=points,
                reason="not a partner's",
                idempotency_key=unique("x"),
            ),
        )

    @rule(entry=st.one_of(issues, redeems, reversals))
    def retry_with_the_same_key(self, entry: UUID) -> None:
        """A retry of a recorded request replays its entry, whatever happened since."""
        before = self._run(self._snapshot())
        model_before = self._model()
        posted = self._run(self.retries[entry]())
        assert posted.replayed is True
        assert posted.entry.entry_id == entry
        assert self._run(self._snapshot()) == before
        assert self._model() == model_before

    # --- the operator's entries ------------------------------------------------------------

    @rule(target=operator_entries, member=member_indexes, holder=st.booleans(), share=shares)
    def expire(self, member: int, holder: bool, share: int) -> object:
        m = self._member(member, holder=holder)
        points = share_of(self.balances[m], share)
        if points > self.balances[m]:
            self._refused(InsufficientPoints, lambda: self.ledger.expire(m, points))
            return multiple()
        posted = self._run(self.ledger.expire(m, points))
        self.balances[m] -= points
        self.entries += 1
        assert posted.entry.kind is EntryKind.EXPIRY
        assert posted.entry.member_balance_after == self.balances[m]
        return posted.entry.entry_id

    @rule(target=operator_entries, member=member_indexes, goodwill=amounts)
    def adjust_in_goodwill(self, member: int, goodwill: int) -> object:
        m = self.members[member]
        posted = self._run(self.ledger.adjust(m, goodwill, "goodwill"))
        self.balances[m] += goodwill
        self.entries += 1
        assert posted.entry.kind is EntryKind.ADJUSTMENT
        assert posted.entry.member_balance_after == self.balances[m]
        return posted.entry.entry_id

    @rule(target=operator_entries, member=member_indexes, holder=st.booleans(), share=shares)
    def adjust_in_correction(self, member: int, holder: bool, share: int) -> object:
        m = self._member(member, holder=holder)
        points = share_of(self.balances[m], share)
        if points > self.balances[m]:
            self._refused(InsufficientPoints, lambda: self.ledger.adjust(m, -points, "too far"))
            return multiple()
        posted = self._run(self.ledger.adjust(m, -points, "correction"))
        self.balances[m] -= points
        self.entries += 1
        assert posted.entry.kind is EntryKind.ADJUSTMENT
        assert posted.entry.member_balance_after == self.balances[m]
        return posted.entry.entry_id

    @rule(member=member_indexes)
    def erase(self, member: int) -> None:
        """An erasure request: the member's personal data goes, the ledger stays as it was."""
        m = self.members[member]
        before = self._run(self._snapshot())
        self._run(self.member_service.erase(m))
        self.erased.add(m)
        assert self._run(self._snapshot()) == before

    # --- after every step ------------------------------------------------------------------

    @invariant()
    def the_database_keeps_the_ledger_invariants(self) -> None:
        """Over the whole ledger. The test starts on a clean ledger, so ``violations_before``
        is empty unless an earlier example of this run failed already; leaving that damage out
        keeps the replays of later examples (and so the shrinking) deterministic."""
        new = [v for v in self._run(self._violations()) if v not in self.violations_before]
        assert new == []

    @invariant()
    def the_database_holds_what_the_model_expects(self) -> None:
        async def reversed_points() -> dict[UUID, int]:
            async with self.database.driver_connection() as connection:
                rows = await connection.fetch(
                    """
                    SELECT reversal_of, sum(points) AS reversed FROM entries
                     WHERE reversal_of = ANY($1::uuid[]) GROUP BY reversal_of
                    """,
                    list(self.originals),
                )
            return {row["reversal_of"]: int(row["reversed"]) for row in rows}

        held = self._run(self._snapshot())
        assert held.balances == self.balances
        assert held.entries == self.entries
        assert held.postings == 2 * self.entries  # every points entry has two postings
        assert held.idempotency_keys == self.idempotency_keys
        assert self._run(reversed_points()) == {
            entry_id: original.reversed
            for entry_id, original in self.originals.items()
            if original.reversed
        }


async def _violations(database_url: str) -> list[str]:
    database = Database.for_url(database_url, pool_size=1)
    try:
        async with database.driver_connection() as connection:
            return await store.invariant_violations(connection)
    finally:
        await database.dispose()


def test_the_ledger_agrees_with_a_model_over_random_operations(database_url: str) -> None:
    run_url = database_url

    class LedgerMachineOnTheRunsDatabase(LedgerMachine):
        database_url = run_url

    assert asyncio.run(_violations(database_url)) == []
    run_state_machine_as_test(
        LedgerMachineOnTheRunsDatabase,
        settings=settings(
            max_examples=40,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    assert asyncio.run(_violations(database_url)) == []
