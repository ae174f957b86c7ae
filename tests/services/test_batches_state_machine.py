"""Batches against a pure-Python model, driven by random sequences of batches and single entries.

A Hypothesis state machine sends batches of issues and of redeems (atomic or not, some items
asking more than the member has, some under a key a single request or an earlier batch used,
with the same fields or not) and single issues and redeems, and sends earlier batches again
under their own keys. The model applies a batch's items in order, as single requests would be:
an item stands when its member has the points at its turn (or its key replays), a refused item
changes nothing, and an atomic batch with a refused item changes nothing at all. After every
step the database holds the model's balances and entries and satisfies the ledger's invariants.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from clearhouse.domain.batches import BatchNotApplied, ItemOutcome, ItemPosted, ItemRefused
from clearhouse.domain.errors import InsufficientPoints
from clearhouse.domain.ledger import EntryKind
from clearhouse.domain.purposes import Purpose
from clearhouse.domain.records import Evidence
from clearhouse.services.batches import Batches, BatchItem, PostedBatch
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store
from tests.services.builders import ZONE, a_ledger, contract_toml, points_request, unique

MEMBERS = 4
T = TypeVar("T")

item_shapes = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=MEMBERS - 1),
        st.integers(min_value=1, max_value=60),
        st.sampled_from(["new", "new", "new", "same key", "other fields"]),
    ),
    min_size=1,
    max_size=8,
)
"""Each item: its member, its points, and whether it takes a key used before (with the same
fields, or with other points)."""


@dataclass(frozen=True)
class Sent:
    """A request the model knows: its key's kind, member, points (for replays and reuses)."""

    kind: EntryKind
    member_id: str
    points: int
    entry_id: uuid.UUID


@dataclass(frozen=True)
class SentBatch:
    purpose: Purpose
    items: tuple[BatchItem, ...]
    atomic: bool
    key: str
    outcomes: tuple[ItemOutcome, ...]


class BatchMachine(RuleBasedStateMachine):
    database_url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        try:
            self.database = Database.for_url(self.database_url, pool_size=2)
            contracts = ContractBook(self.database)
            self.batches = Batches(self.database, contracts, ZONE)
            self.ledger = a_ledger(self.database)
            run = unique("bm")
            self.partner = f"{run}-p"
            self.members = [f"{run}-m{n}" for n in range(MEMBERS)]
            self._run(self._open())
        except BaseException:
            self.teardown()
            raise
        self.balances = dict.fromkeys(self.members, 0)
        self.entries = 0
        self.keyed: dict[str, Sent] = {}
        self.sent_batches: list[SentBatch] = []

    async def _open(self) -> None:
        text = contract_toml(self.partner)
        await load_contracts(self.database, [(f"{self.partner}.toml", text.encode())])
        await enrol_members(self.database, self.members)

    def teardown(self) -> None:
        try:
            if hasattr(self, "database"):
                self._run(self.database.dispose())
        finally:
            self.loop.close()

    def _run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self.loop.run_until_complete(wrapped())

    # --- the rules ---------------------------------------------------------------------------

    @rule(member=st.integers(0, MEMBERS - 1), points=st.integers(1, 80), redeem=st.booleans())
    def single(self, member: int, points: int, redeem: bool) -> None:
        member_id, key = self.members[member], str(uuid.uuid4())
        post = self.ledger.redeem if redeem else self.ledger.issue
        try:
            posted = self._run(
                post(self.partner, points_request(member_id, points), idempotency_key=key)
            )
        except InsufficientPoints:
            assert redeem
            assert self.balances[member_id] < points
            return
        kind = EntryKind.REDEEM if redeem else EntryKind.ISSUE
        self._book(kind, member_id, points)
        self.keyed[key] = Sent(kind, member_id, points, posted.entry.entry_id)

    @rule(shapes=item_shapes, redeem=st.booleans(), atomic=st.booleans())
    def batch(self, shapes: list[tuple[int, int, str]], redeem: bool, atomic: bool) -> None:
        kind = EntryKind.REDEEM if redeem else EntryKind.ISSUE
        items: list[BatchItem] = []
        for member, points, reuse in shapes:
            used = [k for k, s in self.keyed.items() if s.kind is kind]
            if reuse != "new" and used and not any(i.idempotency_key == used[-1] for i in items):
                earlier = self.keyed[used[-1]]
                asked = earlier.points if reuse == "same key" else earlier.points + 1
                items.append(BatchItem(kind, used[-1], points_request(earlier.member_id, asked)))
            else:
                member_id = self.members[member]
                items.append(BatchItem(kind, str(uuid.uuid4()), points_request(member_id, points)))
        purpose = Purpose.REDEMPTION if redeem else Purpose.ACCRUAL
        key = str(uuid.uuid4())
        expected = self._expected(items, atomic)
        try:
            posted = self._post(purpose, items, atomic, key)
        except BatchNotApplied as refused:
            refusals = refused.refused
        else:
            refusals = ()
        if refusals:
            assert expected is None, f"refused: {refusals}"
            return
        assert expected is not None, "an atomic batch with a refused item was recorded"
        assert not posted.replayed
        self._check(items, posted.outcomes, expected)
        self.sent_batches.append(SentBatch(purpose, tuple(items), atomic, key, posted.outcomes))

    @rule(data=st.data())
    def batch_again(self, data: st.DataObject) -> None:
        if not self.sent_batches:
            return
        sent = data.draw(st.sampled_from(self.sent_batches))
        posted = self._post(sent.purpose, list(sent.items), sent.atomic, sent.key)
        assert posted.replayed
        assert posted.outcomes == sent.outcomes

    @invariant()
    def the_database_holds_the_model(self) -> None:
        async def read() -> tuple[dict[str, int], int, list[str]]:
            async with self.database.driver_connection() as connection:
                rows = await connection.fetch(
                    "SELECT member_id, balance_points FROM member_balances"
                    " WHERE member_id = ANY($1)",
                    self.members,
                )
                count = await connection.fetchval(
                    "SELECT count(*) FROM entries WHERE member_id = ANY($1)", self.members
                )
                return (
                    {r["member_id"]: int(r["balance_points"]) for r in rows},
                    int(count),
                    await store.invariant_violations(connection),
                )

        balances, entries, violations = self._run(read())
        assert balances == self.balances
        assert entries == self.entries
        assert violations == []

    # --- the model ---------------------------------------------------------------------------

    def _post(
        self, purpose: Purpose, items: list[BatchItem], atomic: bool, key: str
    ) -> PostedBatch:
        return self._run(
            self.batches.post(
                self.partner, purpose, items, atomic=atomic, idempotency_key=key, evidence=_NONE
            )
        )

    def _expected(self, items: list[BatchItem], atomic: bool) -> list[str] | None:
        """Each item's fate by the model (``posted``, ``replayed``, ``reused``, ``short``), the
        items applied in order; None when an atomic batch is refused."""
        balances = dict(self.balances)
        fates = []
        for item in items:
            request = item.request
            earlier = self.keyed.get(item.idempotency_key)
            if earlier is not None:
                same = (earlier.member_id, earlier.points) == (request.member_id, request.points)
                fates.append("replayed" if same else "reused")
            elif item.kind is EntryKind.REDEEM and balances[request.member_id] < request.points:
                fates.append("short")
            else:
                sign = -1 if item.kind is EntryKind.REDEEM else 1
                balances[request.member_id] += sign * request.points
                fates.append("posted")
        if atomic and any(f in ("reused", "short") for f in fates):
            return None
        return fates

    def _check(
        self, items: list[BatchItem], outcomes: tuple[ItemOutcome, ...], fates: list[str]
    ) -> None:
        assert len(outcomes) == len(items)
        for item, outcome, fate in zip(items, outcomes, fates, strict=True):
            request = item.request
            if fate == "posted":
                assert isinstance(outcome, ItemPosted), outcome
                assert not outcome.replayed
                self._book(item.kind, request.member_id, request.points)
                assert outcome.entry.member_balance_after == self.balances[request.member_id]
                sent = Sent(item.kind, request.member_id, request.points, outcome.entry.entry_id)
                self.keyed[item.idempotency_key] = sent
            elif fate == "replayed":
                assert isinstance(outcome, ItemPosted), outcome
                assert outcome.replayed
                assert outcome.entry.entry_id == self.keyed[item.idempotency_key].entry_id
            else:
                code = "idempotency_key_reused" if fate == "reused" else "insufficient_points"
                assert isinstance(outcome, ItemRefused), outcome
                assert outcome.code == code, outcome

    def _book(self, kind: EntryKind, member_id: str, points: int) -> None:
        self.balances[member_id] += -points if kind is EntryKind.REDEEM else points
        self.entries += 1


_NONE = Evidence()


def test_batches_agree_with_a_model_of_single_requests_in_order(database_url: str) -> None:
    run_url = database_url

    class BatchMachineOnTheRunsDatabase(BatchMachine):
        database_url = run_url

    run_state_machine_as_test(
        BatchMachineOnTheRunsDatabase,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
