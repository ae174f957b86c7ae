"""Closing and settling a period, reading its statements, and verifying it all again.

``close`` seals a month once it has ended in the coalition's time zone: it takes the period's
lock exclusively (waiting for entries in flight; postings hold it shared, so they never queue on
one another), records the period, and computes its ledger root from the canonical entries.
``settle`` nets the period from one aggregate query, refuses if anything does not add up, and
otherwise — in the same transaction — posts one money entry per partner, stores the signed
statements and marks the period settled. Run twice, it returns the stored statements; killed
half way, it wrote nothing and runs again from the start. A refusal is ``SettlementRefused``
with every reason; a refusal of the database (a ``CH`` SQLSTATE) is its domain error, as in
posting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain import merkle
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.errors import NotFound, PeriodNotEnded, SettlementRefused
from clearhouse.domain.ledger import partner_settlement_account, settle_partner
from clearhouse.domain.netting import (
    Aggregate,
    Cohort,
    PartnerNet,
    PointsRollForward,
    check_settlement,
    coalition_margin,
    net_partner,
)
from clearhouse.domain.periods import period_bounds, period_of
from clearhouse.domain.records import Evidence, SealedPeriod
from clearhouse.domain.verification import VerificationReport
from clearhouse.services import coalition_keys
from clearhouse.services.audit import as_signed, verify_ledger
from clearhouse.services.database import Database
from clearhouse.services.metrics import SETTLEMENT_SECONDS
from clearhouse.statements.documents import (
    COALITION_PARTY,
    SignedStatement,
    coalition_document,
    partner_document,
    sign_statement,
)
from clearhouse.statements.model import CoalitionStatement
from clearhouse.statements.workbook import write_statement_workbook
from clearhouse.storage import clearing as store
from clearhouse.storage import contracts as contract_store
from clearhouse.storage import holds as hold_store
from clearhouse.storage import ledger as ledger_store
from clearhouse.storage.clearing import StatementRow
from clearhouse.storage.sqlstates import domain_error


@dataclass(frozen=True, slots=True)
class Settlement:
    period: SealedPeriod
    statements: list[SignedStatement]
    settled_now: bool


async def _previous_closing(connection: Any, period: str) -> int | None:
    """Outstanding points at the end of the previous period, as its coalition statement says."""
    previous = await store.previous_period(connection, period)
    if previous is None or previous.status != "settled":
        return None
    rows = await store.fetch_statements(connection, previous.period, COALITION_PARTY)
    if not rows:
        return None
    coalition = as_signed(rows[0]).body()
    assert isinstance(coalition, CoalitionStatement)
    return coalition.points_roll_forward.closing


@dataclass(frozen=True, slots=True)
class PeriodNetting:
    """A closed period netted from its aggregates, as settling it begins; nothing written."""

    aggregates: list[Aggregate]
    roll_forward: PointsRollForward
    versions: dict[str, list[ContractVersion]]
    """Every contract version of each partner with entries in the period, oldest first."""
    nets: list[PartnerNet]
    margin: Decimal
    problems: list[str]
    """Why the period may not be settled; empty when everything adds up."""
    cohorts: list[Cohort]
    """Every month of issue as of the cut-off (the coalition statement's breakage data)."""

    @property
    def partner_ids(self) -> list[str]:
        return [net.partner_id for net in self.nets]


async def net_period(connection: Any, closed: SealedPeriod, zone: str) -> PeriodNetting:
    """The aggregate part of settling: the period's aggregates and roll-forward, the partners'
    contract versions, the netting and its checks."""
    period = await store.period_aggregates(connection, closed.starts_at, closed.ends_at)
    aggregates = period.partners
    expired = await store.expired_by_issuer(connection, closed.starts_at, closed.ends_at)
    roll_forward = await store.points_roll_forward(
        connection,
        closed.starts_at,
        closed.ends_at,
        await _previous_closing(connection, closed.period),
        period,
    )
    cohorts = await store.sealed_cohorts(connection, closed.period)
    if cohorts is None:  # closed before cohorts were sealed with periods
        cohorts = await store.breakage_cohorts(connection, closed.ends_at, zone, closed.period)
    partner_ids = sorted({a.partner_id for a in aggregates} | {e.partner_id for e in expired})
    versions: dict[str, list[ContractVersion]] = {
        p: await contract_store.partner_versions(connection, p) for p in partner_ids
    }
    nets = [
        net_partner(
            p,
            [a for a in aggregates if a.partner_id == p],
            {v.version: v for v in versions[p]},
            [e for e in expired if e.partner_id == p],
        )
        for p in partner_ids
    ]
    margin = coalition_margin(nets)
    problems = check_settlement(nets, margin, roll_forward, cohorts)
    return PeriodNetting(aggregates, roll_forward, versions, nets, margin, list(problems), cohorts)


async def signed_statement(database: Database, period: str, party: str) -> SignedStatement:
    """The signed statement of ``party`` for ``period``, as stored at settlement; reading it
    needs no coalition key."""
    async with database.driver_connection() as connection:
        rows = await store.fetch_statements(connection, period, party)
    if not rows:
        raise NotFound(f"no statement of {party} for {period} (is it settled?)")
    return as_signed(rows[0])


class Clearing:
    def __init__(
        self,
        database: Database,
        *,
        zone: ZoneInfo,
        key: CoalitionKey,
        coalition: str = "Clearhouse coalition",
    ) -> None:
        self._database = database
        self._zone = zone
        self._key = key
        self._coalition = coalition

    async def close(self, period: str) -> SealedPeriod:
        """Seal ``period``; closing a closed period returns it as it was sealed."""
        async with self._database.transaction() as connection:
            await store.custom_plans(connection)
            return await self._close(connection, period)

    async def _close(self, connection: Any, period: str) -> SealedPeriod:
        start, end = period_bounds(period, self._zone)
        existing = await store.fetch_period(connection, period)
        if existing is not None:
            return existing
        now = await ledger_store.ledger_now(connection)
        if now < end:
            raise PeriodNotEnded(f"{period} ends at {end.isoformat()}; it is {now.isoformat()}")
        previous = await store.previous_period(connection, period)
        unsealed_from = None if previous is None else previous.ends_at
        earlier = await store.first_entry_between(connection, unsealed_from, start)
        if earlier is not None:
            raise PeriodNotEnded(
                f"close {period_of(earlier, self._zone)} first: periods are sealed in order"
            )
        await store.lock_period(connection, period)
        tree = merkle.TreeBuilder()
        async for leaves in store.canonical_batches(connection, start, end):
            tree.add_all(leaves)
        head = tree.head()
        previous_root = merkle.FIRST_PREVIOUS_ROOT if previous is None else previous.root
        row = SealedPeriod(
            period=period,
            status="closed",
            starts_at=start,
            ends_at=end,
            closed_at=now,
            entry_count=tree.size,
            tree_head=head,
            previous_root=previous_root,
            root=merkle.period_root(previous_root, head),
            settled_at=None,
        )
        # The cohorts as of the cut-off are facts of the month from now on: computed once
        # here, they spare every netting of it a read of the ledger's whole history of lots.
        cohorts = await store.breakage_cohorts(connection, end, self._zone.key, period)
        await store.insert_period(connection, row, cohorts)
        return row

    async def settle(self, period: str) -> Settlement:
        """Close if need be, net, check, post, state and sign; once."""
        # The key that signs is published before it signs anything.
        await coalition_keys.register(self._database, self._key)
        with SETTLEMENT_SECONDS.time():
            return await self._settle_once(period)

    async def _settle_once(self, period: str) -> Settlement:
        try:
            async with self._database.transaction() as connection:
                await store.custom_plans(connection)
                closed = await self._close(connection, period)
                await connection.execute(
                    "SELECT 1 FROM periods WHERE period = $1 FOR UPDATE", period
                )
                closed = await store.fetch_period(connection, period) or closed
                if closed.status == "settled":
                    rows = await store.fetch_statements(connection, period)
                    return Settlement(closed, [as_signed(r) for r in rows], settled_now=False)
                statements = await self._settle(connection, closed)
                await store.mark_settled(connection, period)
                settled = await store.fetch_period(connection, period)
                assert settled is not None
        except asyncpg.PostgresError as exc:
            # The money entries go through ledger_post, whose refusals (and the balance check
            # at commit) are domain errors here as they are in posting.
            error = domain_error(exc)
            if error is None:
                raise
            raise error from exc
        return Settlement(settled, statements, settled_now=True)

    async def net(self, period: str) -> PeriodNetting:
        """What settling the closed ``period`` would compute, before it writes anything: the
        aggregates, the netting and the checks (``problems`` empty when it adds up)."""
        async with self._database.transaction() as connection:
            await store.custom_plans(connection)
            closed = await store.fetch_period(connection, period)
            if closed is None:
                raise NotFound(f"{period} is not closed")
            return await net_period(connection, closed, self._zone.key)

    async def _settle(self, connection: Any, closed: SealedPeriod) -> list[SignedStatement]:
        period = closed.period
        netting = await net_period(connection, closed, self._zone.key)
        if netting.problems:
            raise SettlementRefused(netting.problems)
        aggregates, versions, nets = netting.aggregates, netting.versions, netting.nets
        partner_ids, margin, roll_forward = (
            netting.partner_ids,
            netting.margin,
            netting.roll_forward,
        )
        positions = await store.settlement_positions(
            connection, [partner_settlement_account(p) for p in partner_ids]
        )
        now = await ledger_store.ledger_now(connection)
        currency = "EUR"
        statements: list[SignedStatement] = []
        for net in nets:
            legal_name = versions[net.partner_id][-1].legal_name
            currency = versions[net.partner_id][-1].currency
            if net.net:
                await ledger_store.record_entry(
                    connection,
                    uuid4(),
                    settle_partner(net.partner_id, net.net, currency),
                    contract_version=None,
                    occurred_at=closed.ends_at,
                    reference=f"settlement {period}",
                    idempotency_key=f"settlement:{period}",
                    request_sha256=closed.root,
                    evidence=Evidence(),
                    zone=self._zone.key,
                )
            document = partner_document(
                period=period,
                sequence=await store.statement_sequence(connection, net.partner_id),
                coalition=self._coalition,
                net=net,
                legal_name=legal_name,
                currency=currency,
                versions=versions[net.partner_id],
                entries=sum(a.entries for a in aggregates if a.partner_id == net.partner_id),
                ledger_root=closed.root,
                generated_at=now,
                opening_position=positions[partner_settlement_account(net.partner_id)],
            )
            statements.append(sign_statement(document, self._key))
        coalition = coalition_document(
            period=period,
            sequence=await store.statement_sequence(connection, COALITION_PARTY),
            coalition=self._coalition,
            currency=currency,
            nets=nets,
            legal_names={p: versions[p][-1].legal_name for p in partner_ids},
            margin=margin,
            roll_forward=roll_forward,
            open_holds=await hold_store.open_at(connection, closed.ends_at),
            ledger_root=closed.root,
            generated_at=now,
            cohorts=netting.cohorts,
        )
        statements.append(sign_statement(coalition, self._key))
        for statement in statements:
            await store.insert_statement(
                connection,
                StatementRow(
                    period,
                    statement.party,
                    statement.sequence,
                    statement.document,
                    statement.sha256,
                    statement.signature,
                    statement.key_id,
                ),
            )
        return sorted(statements, key=lambda st: st.party)

    async def statement(self, period: str, party: str) -> SignedStatement:
        return await signed_statement(self._database, period, party)

    async def write_workbook(self, period: str, party: str, out: BinaryIO) -> None:
        """The workbook of one statement (a partner's, or the coalition's), streamed to ``out``."""
        statement = await self.statement(period, party)
        others = [] if party != COALITION_PARTY else await self.statements(period)
        keys = {k.key_id: k.public_key for k in await coalition_keys.published(self._database)}
        async with self._database.transaction() as connection:
            await store.custom_plans(connection)
            closed = await store.fetch_period(connection, period)
            assert closed is not None
            rows = store.statement_entries(
                connection,
                closed.starts_at,
                closed.ends_at,
                None if party == COALITION_PARTY else party,
            )
            await write_statement_workbook(
                statement,
                [o for o in others if o.party != COALITION_PARTY],
                rows,
                out,
                public_key=keys.get(statement.key_id),
                zone=self._zone,
            )

    async def statements(self, period: str) -> list[SignedStatement]:
        async with self._database.driver_connection() as connection:
            return [as_signed(r) for r in await store.fetch_statements(connection, period)]

    async def canonical_entries(self, period: str) -> AsyncIterator[bytes]:
        """A closed period's canonical entries in root order (JSON Lines for auditors)."""
        async with self._database.transaction() as connection:
            await store.custom_plans(connection)
            closed = await store.fetch_period(connection, period)
            if closed is None:
                raise NotFound(f"{period} is not closed")
            async for line in store.canonical_entries(connection, closed.starts_at, closed.ends_at):
                yield line

    async def periods(self) -> list[SealedPeriod]:
        async with self._database.driver_connection() as connection:
            return await store.fetch_periods(connection)

    async def closed_period(self, period: str) -> SealedPeriod:
        """``period`` as it was sealed (and settled, if it is); an open or unknown month is
        ``NotFound``, a malformed one ``InvalidRequest``."""
        period_bounds(period, self._zone)
        async with self._database.driver_connection() as connection:
            row = await store.fetch_period(connection, period)
        if row is None:
            raise NotFound(f"{period} is not closed")
        return row

    async def verify(self, period: str | None = None) -> VerificationReport:
        """Recompute every closed period's root, check every statement and every entry's
        partner signature; say what was checked and what differs (``services.audit``)."""
        return await verify_ledger(self._database, self._zone, period)
