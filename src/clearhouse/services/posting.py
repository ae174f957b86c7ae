"""Posting to the ledger: issue, redeem, reverse (partners); expire and adjust (operator).

Each call asks the domain for the entry's postings, then records it in one round trip
(``storage.ledger.record_entry``). Idempotency: a second request with the same
``(partner, Idempotency-Key)`` meets the key's primary key inside that same call and fails
without writing; we then read the first entry back and either replay it (same fingerprint) or
refuse with the fields that differ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from clearhouse.domain import ledger as rules
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.errors import (
    ClearhouseError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    Unavailable,
)
from clearhouse.domain.expiry import NO_EXPIRY, ExpiryPolicy
from clearhouse.domain.holds import Hold
from clearhouse.domain.idempotency import (
    differing_fields,
    request_fingerprint,
    validate_idempotency_key,
)
from clearhouse.domain.ledger import (
    REASON_LENGTH_MAX,
    REFERENCE_LENGTH_MAX,
    EntryDraft,
    EntryKind,
)
from clearhouse.domain.periods import utc_instant
from clearhouse.domain.purposes import Purpose
from clearhouse.domain.records import Entry, Evidence
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.metrics import ENTRIES_POSTED
from clearhouse.storage import ledger as store
from clearhouse.storage.sqlstates import domain_error


class KeyTaken(Exception):
    """The Idempotency-Key is recorded already, by an earlier or a concurrent twin request:
    the caller answers with the replay (or ``idempotency_key_reused``)."""


@dataclass(frozen=True, slots=True)
class PointsRequest:
    """A partner's issue or redeem, as it arrived."""

    member_id: str
    points: int
    occurred_at: datetime
    reference: str
    metadata_json: str | None = None
    """What else the partner sent, as JSON; kept only as long as its contract says."""


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """The recorded entry; ``replayed`` when an earlier request under the same key made it."""

    entry: Entry
    replayed: bool = False


NO_EVIDENCE = Evidence()
"""Entries made without a signed request (operator entries, tests of the service itself)."""


def _fields_of(entry: Entry) -> dict[str, object]:
    """The fingerprinted fields of a request, as its entry recorded them."""
    return {
        "kind": entry.kind.value,
        "member_id": entry.member_id,
        "points": entry.points,
        "occurred_at": _utc_text(entry.occurred_at),
        "reference": entry.reference,
        "reversal_of": None if entry.reversal_of is None else str(entry.reversal_of),
    }


class Ledger:
    """Records entries; the one place where ledger writes begin and end."""

    def __init__(
        self,
        database: Database,
        contracts: ContractBook,
        zone: str,
        expiry: ExpiryPolicy = NO_EXPIRY,
    ) -> None:
        self._database = database
        self._contracts = contracts
        self._zone = zone
        self._expiry = expiry

    async def issue(
        self,
        partner_id: str,
        request: PointsRequest,
        *,
        idempotency_key: str,
        evidence: Evidence = NO_EVIDENCE,
    ) -> PostedEntry:
        """Give ``request.points`` to the member on behalf of ``partner_id``."""
        validate_points_request(request)
        draft = rules.issue_points(partner_id, request.member_id, request.points)
        return await self._post_under_contract(
            draft, request, Purpose.ACCRUAL, idempotency_key, evidence
        )

    async def redeem(
        self,
        partner_id: str,
        request: PointsRequest,
        *,
        idempotency_key: str,
        evidence: Evidence = NO_EVIDENCE,
    ) -> PostedEntry:
        """Take ``request.points`` from the member at ``partner_id``; never below zero."""
        validate_points_request(request)
        draft = rules.redeem_points(partner_id, request.member_id, request.points)
        return await self._post_under_contract(
            draft, request, Purpose.REDEMPTION, idempotency_key, evidence
        )

    async def _post_under_contract(
        self,
        draft: EntryDraft,
        request: PointsRequest,
        purpose: Purpose,
        idempotency_key: str,
        evidence: Evidence,
    ) -> PostedEntry:
        """Post under the contract version in force; once more if the database knows a newer."""
        assert draft.partner_id is not None

        async def post(version: ContractVersion) -> PostedEntry:
            return await self._post(
                draft,
                occurred_at=request.occurred_at,
                reference=request.reference,
                metadata=(purpose.value, request.metadata_json) if request.metadata_json else None,
                idempotency_key=idempotency_key,
                contract_version=version.version,
                evidence=evidence,
            )

        return await self._contracts.under_contract(draft.partner_id, purpose, draft.points, post)

    async def capture(
        self,
        partner_id: str,
        hold: Hold,
        points: int,
        *,
        idempotency_key: str,
        request_sha256: bytes,
        evidence: Evidence,
        metadata_json: str | None,
    ) -> Entry:
        """Redeem ``points`` of ``hold`` as its capture: the redeem entry, the hold ended and its
        points released in one call. ``KeyTaken`` when the Idempotency-Key was recorded before
        (the holds service answers with its replay)."""
        draft = rules.redeem_points(partner_id, hold.member_id, points)
        purpose = Purpose.REDEMPTION

        async def post(version: ContractVersion) -> Entry:
            return await self._record(
                draft,
                occurred_at=hold.occurred_at,
                reference=hold.reference,
                metadata=(purpose.value, metadata_json) if metadata_json else None,
                idempotency_key=idempotency_key,
                request_sha256=request_sha256,
                contract_version=version.version,
                evidence=evidence,
                hold_id=hold.hold_id,
            )

        return await self._contracts.under_contract(partner_id, purpose, points, post)

    async def reverse(
        self,
        partner_id: str,
        entry_id: UUID,
        *,
        points: int | None,
        reason: str,
        idempotency_key: str,
        evidence: Evidence = NO_EVIDENCE,
    ) -> PostedEntry:
        """Reverse ``points`` (all that remain when None) of the partner's own entry."""
        rules.validate_text(reason, name="reason", length_max=REASON_LENGTH_MAX)
        validate_idempotency_key(idempotency_key)
        async with self._database.driver_connection() as connection:
            original = await store.fetch_reversible(connection, entry_id)
        if original is None or original.partner_id != partner_id:
            # Before the rules run, so another partner's entry stays indistinguishable.
            replay = await self._replay_refused_reversal(
                partner_id, idempotency_key, entry_id, points, reason
            )
            if replay is not None:
                return replay
            raise NotFound(f"no entry {entry_id}")
        try:
            draft = rules.reverse_entry(original, points)
        except ClearhouseError:
            # A retry of a reversal that took the last points must still replay.
            replay = await self._replay_refused_reversal(
                partner_id, idempotency_key, entry_id, points, reason
            )
            if replay is not None:
                return replay
            raise
        return await self._post(
            draft,
            occurred_at=None,
            reference=reason,
            idempotency_key=idempotency_key,
            contract_version=original.contract_version,
            evidence=evidence,
            fingerprint_points=points,
        )

    async def _replay_refused_reversal(
        self,
        partner_id: str,
        idempotency_key: str,
        entry_id: UUID,
        points: int | None,
        reason: str,
    ) -> PostedEntry | None:
        """The replay of a refused reversal, when its key made this very reversal before.

        None when the key is unused: the refusal stands. A key that made something else is
        ``idempotency_key_reused``, never a replay of an unrelated entry.
        """
        async with self._database.driver_connection() as connection:
            found = await store.fetch_idempotent(connection, partner_id, idempotency_key)
        if found is None:
            return None
        stored_fingerprint, entry = found
        # As ``_post`` fingerprinted it: a reversal of all that remained, by what it took.
        fields = request_fields(
            EntryKind.REVERSAL,
            None if entry is None else entry.member_id,
            points if points is not None or entry is None else entry.points,
            None,
            reason,
            entry_id,
            None,
        )
        if entry is not None and stored_fingerprint == request_fingerprint("reversal", fields):
            return PostedEntry(entry, replayed=True)
        raise key_reused(entry, fields)

    async def expire(self, member_id: str, points: int) -> PostedEntry:
        """Move lapsed points of a member to breakage (operator)."""
        return await self._post(rules.expire_points(member_id, points))

    async def adjust(self, member_id: str, points_signed: int, reason: str) -> PostedEntry:
        """Goodwill (positive) or correction (negative) on a member's points (operator)."""
        rules.validate_text(reason, name="reason", length_max=REASON_LENGTH_MAX)
        return await self._post(rules.adjust_points(member_id, points_signed), reference=reason)

    async def _post(
        self,
        draft: EntryDraft,
        *,
        occurred_at: datetime | None = None,
        reference: str | None = None,
        idempotency_key: str | None = None,
        contract_version: int | None = None,
        evidence: Evidence = NO_EVIDENCE,
        fingerprint_points: int | None = None,
        metadata: tuple[str, str] | None = None,
    ) -> PostedEntry:
        fields = request_fields(
            draft.kind,
            draft.member_id,
            draft.points if fingerprint_points is None else fingerprint_points,
            occurred_at,
            reference,
            draft.reversal_of,
            None if metadata is None else metadata[1],
        )
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
        fingerprint = request_fingerprint(draft.kind.value, fields)
        try:
            entry = await self._record(
                draft,
                occurred_at=occurred_at,
                reference=reference,
                idempotency_key=idempotency_key,
                request_sha256=fingerprint if idempotency_key else None,
                contract_version=contract_version,
                evidence=evidence,
                metadata=metadata,
            )
        except KeyTaken:
            assert idempotency_key is not None
            assert draft.partner_id is not None
            async with self._database.driver_connection() as connection:
                return await _replay(
                    connection, draft.partner_id, idempotency_key, fingerprint, fields
                )
        return PostedEntry(entry)

    async def _record(
        self,
        draft: EntryDraft,
        *,
        occurred_at: datetime | None,
        reference: str | None,
        idempotency_key: str | None,
        request_sha256: bytes | None,
        contract_version: int | None,
        evidence: Evidence,
        metadata: tuple[str, str] | None,
        hold_id: UUID | None = None,
    ) -> Entry:
        """Record the entry in one call (its metadata in the same transaction); a refusal
        becomes its domain error, an Idempotency-Key recorded before ``KeyTaken``."""
        entry_id = uuid4()
        opened = (
            self._database.driver_connection() if metadata is None else self._database.transaction()
        )
        async with refusals_as_errors(keyed=draft.partner_id is not None), opened as connection:
            recorded_at, balance = await store.record_entry(
                connection,
                entry_id,
                draft,
                contract_version=contract_version,
                occurred_at=occurred_at,
                reference=reference,
                idempotency_key=idempotency_key,
                request_sha256=request_sha256,
                evidence=evidence,
                zone=self._zone,
                expiry=self._expiry,
                hold_id=hold_id,
            )
            if metadata is not None:
                await store.insert_metadata(
                    connection, entry_id, metadata[0], metadata[1], recorded_at
                )
        ENTRIES_POSTED.labels(draft.kind.value).inc()
        return Entry(
            entry_id=entry_id,
            kind=draft.kind,
            partner_id=draft.partner_id,
            member_id=draft.member_id,
            points=draft.points,
            member_balance_after=balance,
            contract_version=contract_version,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            reference=reference,
            reversal_of=draft.reversal_of,
        )


@asynccontextmanager
async def refusals_as_errors(*, keyed: bool = True) -> AsyncIterator[None]:
    """Around a call of the ledger's database functions: a refusal (a ``CH`` SQLSTATE) becomes
    its domain error; with ``keyed``, an Idempotency-Key recorded before becomes ``KeyTaken``."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != store.IDEMPOTENCY_CONSTRAINT or not keyed:
            raise
        raise KeyTaken from exc
    except asyncpg.LockNotAvailableError as exc:
        # Only a wait on the key's index means its twin is still at work.
        if '"idempotency_keys' in str(getattr(exc, "context", None) or ""):
            raise IdempotencyKeyInUse(
                "a request with this Idempotency-Key is still being processed; retry later"
            ) from exc
        raise Unavailable("the ledger is busy with this member; nothing was written") from exc
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        raise Unavailable("the ledger was busy; nothing was written, retry") from exc
    except asyncpg.PostgresError as exc:
        error = domain_error(exc)
        if error is None:
            raise
        raise error from exc


def request_fields(
    kind: EntryKind,
    member_id: str | None,
    points: int | None,
    occurred_at: datetime | None,
    reference: str | None,
    reversal_of: UUID | None,
    metadata_json: str | None,
) -> dict[str, object]:
    """What an Idempotency-Key's fingerprint covers of a request."""
    return {
        "kind": kind.value,
        "member_id": member_id,
        "points": points,
        "occurred_at": _utc_text(occurred_at),
        "reference": reference,
        "reversal_of": None if reversal_of is None else str(reversal_of),
        "metadata": metadata_json,
    }


def key_reused(entry: Entry | None, fields: dict[str, object]) -> IdempotencyKeyReused:
    if entry is None:
        return IdempotencyKeyReused(
            "this Idempotency-Key was used before for another operation (an enrolment or a hold)"
        )
    differing = differing_fields(_fields_of(entry), fields) or ["the request body"]
    return IdempotencyKeyReused(
        "this Idempotency-Key was used before with a different request "
        f"(differs in: {', '.join(differing)})"
    )


async def _replay(
    connection: object,
    partner_id: str,
    idempotency_key: str,
    fingerprint: bytes,
    fields: dict[str, object],
) -> PostedEntry:
    found = await store.fetch_idempotent(connection, partner_id, idempotency_key)
    if found is None:  # the first request rolled back after we met its key: not a replay
        raise IdempotencyKeyInUse("the first request with this Idempotency-Key did not complete")
    stored_fingerprint, entry = found
    if entry is not None and stored_fingerprint == fingerprint:
        return PostedEntry(entry, replayed=True)
    raise key_reused(entry, fields)


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def validate_points_request(request: PointsRequest) -> None:
    rules.validate_identifier(request.member_id, name="member_id")
    rules.validate_text(request.reference, name="reference", length_max=REFERENCE_LENGTH_MAX)
    if utc_instant(request.occurred_at, name="occurred_at").year < 2000:
        raise InvalidRequest("occurred_at lies before 2000", field="occurred_at")
