"""Holds: authorize, capture, void and expire, and the partner's reads of its own holds.

Every write looks at its Idempotency-Key first: a key recorded before answers with the stored
answer (the hold and the member's points as that very change left them; a capture's entry too),
whatever the hold became since; a key recorded with another request is
``idempotency_key_reused``. Only a new key reaches the state checks, which the database makes
in the same call that writes (``hold_authorize``, ``hold_void``, ``ledger_post`` with the hold):
the available points, the hold still open and its time not run out. A concurrent twin with the
same key waits on the key's index and then replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from clearhouse.domain import ledger as rules
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, NotFound
from clearhouse.domain.holds import (
    Hold,
    HoldStatus,
    MemberPoints,
    authorize_fields,
    capture_fields,
    validate_capture_points,
    validate_hold_seconds,
    void_fields,
)
from clearhouse.domain.idempotency import request_fingerprint, validate_idempotency_key
from clearhouse.domain.ledger import REASON_LENGTH_MAX, REFERENCE_LENGTH_MAX
from clearhouse.domain.money import validate_points
from clearhouse.domain.periods import utc_instant
from clearhouse.domain.purposes import Purpose
from clearhouse.domain.records import Entry, Evidence
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.posting import NO_EVIDENCE, KeyTaken, Ledger, refusals_as_errors
from clearhouse.storage import holds as store
from clearhouse.storage import ledger as ledger_store

SWEEP_BATCH: int = 1000
"""Holds the sweeper ends per database call."""


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A partner's authorization, as it arrived."""

    member_id: str
    points: int
    occurred_at: datetime
    reference: str
    hold_seconds: int | None = None
    metadata_json: str | None = None


@dataclass(frozen=True, slots=True)
class HoldAnswer:
    """A change of a hold as the partner is told it: the hold, the member's points right after,
    a capture's redeem entry; ``replayed`` when an earlier request under the key made it."""

    hold: Hold
    member: MemberPoints
    entry: Entry | None = None
    replayed: bool = False


class Holds:
    """The one place where holds begin and end."""

    def __init__(self, database: Database, contracts: ContractBook, ledger: Ledger) -> None:
        self._database = database
        self._contracts = contracts
        self._ledger = ledger

    async def authorize(
        self,
        partner_id: str,
        request: HoldRequest,
        *,
        idempotency_key: str,
        evidence: Evidence = NO_EVIDENCE,
    ) -> HoldAnswer:
        """Reserve ``request.points`` of the member's available points for ``partner_id``."""
        validate_idempotency_key(idempotency_key)
        rules.validate_identifier(request.member_id, name="member_id")
        validate_points(request.points)
        rules.validate_text(request.reference, name="reference", length_max=REFERENCE_LENGTH_MAX)
        occurred_at = utc_instant(request.occurred_at, name="occurred_at")
        hold_seconds = validate_hold_seconds(request.hold_seconds)
        fingerprint = request_fingerprint(
            "hold",
            authorize_fields(
                request.member_id,
                request.points,
                hold_seconds,
                occurred_at.astimezone(UTC).isoformat(),
                request.reference,
                request.metadata_json,
            ),
        )
        replay = await self._replay(partner_id, idempotency_key, fingerprint, final=False)
        if replay is not None:
            return replay
        hold_id = uuid4()

        async def write(version: ContractVersion) -> None:
            async with refusals_as_errors(), self._database.driver_connection() as connection:
                await store.authorize(
                    connection,
                    hold_id,
                    partner_id=partner_id,
                    member_id=request.member_id,
                    points=request.points,
                    hold_seconds=hold_seconds,
                    contract_version=version.version,
                    occurred_at=occurred_at,
                    reference=request.reference,
                    metadata_json=request.metadata_json,
                    idempotency_key=idempotency_key,
                    request_sha256=fingerprint,
                    evidence=evidence,
                )

        try:
            await self._contracts.under_contract(
                partner_id, Purpose.REDEMPTION, request.points, write
            )
        except KeyTaken:
            return await self._replay_or_fail(partner_id, idempotency_key, fingerprint, False)
        return await self._answer(hold_id, final=False)

    async def capture(
        self,
        partner_id: str,
        hold_id: UUID,
        points: int | None,
        *,
        idempotency_key: str,
        evidence: Evidence = NO_EVIDENCE,
    ) -> HoldAnswer:
        """Redeem ``points`` of the hold (all it reserved when None) and release the rest."""
        validate_idempotency_key(idempotency_key)
        asked = validate_capture_points(points)
        fingerprint = request_fingerprint("capture", capture_fields(hold_id, asked))
        replay = await self._replay(partner_id, idempotency_key, fingerprint, final=True)
        if replay is not None:
            return replay
        async with self._database.driver_connection() as connection:
            hold = await store.fetch_hold(connection, hold_id, partner_id)
            metadata_json = (
                None if hold is None else await store.fetch_metadata(connection, hold_id)
            )
        if hold is None:
            raise NotFound(f"no hold {hold_id}")
        try:
            await self._ledger.capture(
                partner_id,
                hold,
                hold.points if asked is None else asked,
                idempotency_key=idempotency_key,
                request_sha256=fingerprint,
                evidence=evidence,
                metadata_json=metadata_json,
            )
        except KeyTaken:
            return await self._replay_or_fail(partner_id, idempotency_key, fingerprint, True)
        return await self._answer(hold_id, final=True)

    async def void(
        self,
        partner_id: str,
        hold_id: UUID,
        reason: str | None,
        *,
        idempotency_key: str,
    ) -> HoldAnswer:
        """Release all the hold reserved; nothing is redeemed."""
        validate_idempotency_key(idempotency_key)
        if reason is not None:
            rules.validate_text(reason, name="reason", length_max=REASON_LENGTH_MAX)
        fingerprint = request_fingerprint("void", void_fields(hold_id, reason))
        replay = await self._replay(partner_id, idempotency_key, fingerprint, final=True)
        if replay is not None:
            return replay

        try:
            async with refusals_as_errors(), self._database.driver_connection() as connection:
                await store.void(
                    connection,
                    hold_id,
                    partner_id=partner_id,
                    reason=reason,
                    idempotency_key=idempotency_key,
                    request_sha256=fingerprint,
                )
        except KeyTaken:
            return await self._replay_or_fail(partner_id, idempotency_key, fingerprint, True)
        return await self._answer(hold_id, final=True)

    async def hold(self, partner_id: str | None, hold_id: UUID) -> Hold:
        """The partner's own hold (any hold for the operator, ``partner_id`` None)."""
        async with self._database.driver_connection() as connection:
            found = await store.fetch_hold(connection, hold_id, partner_id)
        if found is None:
            raise NotFound(f"no hold {hold_id}")
        return found

    async def page(
        self,
        partner_id: str | None,
        *,
        status: HoldStatus | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Hold]:
        """Holds in the order they were made (the partner's own, or all for the operator)."""
        async with self._database.driver_connection() as connection:
            return await store.holds_page(
                connection, partner_id=partner_id, status=status, after=after, limit=limit
            )

    async def expire_due(self) -> int:
        """End every hold whose time ran out and release its points; how many were ended."""
        ended = 0
        while True:
            async with self._database.driver_connection() as connection:
                batch = await store.expire_due(connection, SWEEP_BATCH)
            ended += batch
            if batch < SWEEP_BATCH:
                return ended

    async def _replay(
        self, partner_id: str, idempotency_key: str, fingerprint: bytes, *, final: bool
    ) -> HoldAnswer | None:
        """The stored answer when the key was recorded before; None for a new key."""
        async with self._database.driver_connection() as connection:
            key = await store.fetch_key(connection, partner_id, idempotency_key)
        if key is None:
            return None
        if key.request_sha256 != fingerprint or key.hold_id is None:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used before with a different request"
            )
        return await self._answer(key.hold_id, final=final, replayed=True)

    async def _replay_or_fail(
        self, partner_id: str, idempotency_key: str, fingerprint: bytes, final: bool
    ) -> HoldAnswer:
        """After a concurrent twin recorded the key: its answer, or why there is none."""
        replay = await self._replay(partner_id, idempotency_key, fingerprint, final=final)
        if replay is None:  # the twin rolled back after we met its key
            raise IdempotencyKeyInUse(
                "the first request with this Idempotency-Key did not complete"
            )
        return replay

    async def _answer(self, hold_id: UUID, *, final: bool, replayed: bool = False) -> HoldAnswer:
        async with self._database.driver_connection() as connection:
            change = await store.fetch_change(connection, hold_id, final=final)
            entry = (
                None
                if change is None or change.entry_id is None
                else await ledger_store.fetch_entry(connection, change.entry_id)
            )
        if change is None:
            raise NotFound(f"no hold {hold_id}")
        return HoldAnswer(change.hold, change.member, entry, replayed)
