"""Posting a batch: up to a thousand issues or redeems of one partner, recorded in one round trip.

Each item is checked by the rules of a single issue or redeem (``services.posting``): its fields,
its key, its kind against the batch's purpose, the contract's limit per transaction; what passes
goes to ``ledger_post_batch`` in one call, which records every item by ``ledger_post`` in a
subtransaction of its own, so the database's rules hold item by item (the member's points, the
daily limit, an erased member, the period cut-off) and a refused item leaves nothing behind. An
item whose key was recorded before is a replay when its fingerprint is the same (the fingerprint
of the single request, so a request retried as an item replays too), else refused as a reuse.

The batch's own key is recorded first, in the same transaction, and what the batch answered is
kept under it (``transaction_batches``): a retry of the batch is answered item by item as the
first time, its entries read back. An atomic batch with a refused item raises
``BatchNotApplied`` and writes nothing, not even its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import uuid4

from clearhouse.domain import ledger as rules
from clearhouse.domain.batches import (
    BatchNotApplied,
    ItemOutcome,
    ItemPosted,
    ItemRefused,
    check_batch,
    entry_of_record,
    outcome_of,
    outcome_record,
    purpose_refusal,
)
from clearhouse.domain.contracts import ContractVersion, check_points_limit
from clearhouse.domain.errors import (
    ClearhouseError,
    ContractChanged,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
    PurposeNotPermitted,
    Unavailable,
)
from clearhouse.domain.expiry import NO_EXPIRY, ExpiryPolicy
from clearhouse.domain.idempotency import request_fingerprint, validate_idempotency_key
from clearhouse.domain.ledger import EntryKind
from clearhouse.domain.purposes import Purpose
from clearhouse.domain.records import Entry, Evidence
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.metrics import ENTRIES_POSTED
from clearhouse.services.posting import (
    KeyTaken,
    PointsRequest,
    key_reused,
    refusals_as_errors,
    request_fields,
    validate_points_request,
)
from clearhouse.storage import batches as store
from clearhouse.storage.ledger import insert_metadata_rows
from clearhouse.storage.sqlstates import refusal_error


@dataclass(frozen=True, slots=True)
class BatchItem:
    """An issue or a redeem of a batch, with its own Idempotency-Key."""

    kind: EntryKind
    idempotency_key: str
    request: PointsRequest


@dataclass(frozen=True, slots=True)
class PostedBatch:
    """What each item came to, in the items' order; ``replayed`` when an earlier request under
    the batch's key answered it."""

    outcomes: tuple[ItemOutcome, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class _Prepared:
    index: int
    item: BatchItem
    draft: store.ItemDraft
    fields: dict[str, object]


class Batches:
    """Records batches; their items go through the same rules as single entries."""

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

    async def post(
        self,
        partner_id: str,
        purpose: Purpose,
        items: Sequence[BatchItem],
        *,
        atomic: bool,
        idempotency_key: str,
        evidence: Evidence,
    ) -> PostedBatch:
        """Record ``items`` for ``partner_id`` under the batch's ``purpose`` (``accrual``: issues,
        ``redemption``: redeems), each that passes its checks; with ``atomic`` all of them or
        none (``BatchNotApplied``)."""
        validate_idempotency_key(idempotency_key)
        check_batch([item.idempotency_key for item in items])
        if purpose not in (Purpose.ACCRUAL, Purpose.REDEMPTION):
            raise PurposeNotPermitted("a batch serves the purpose 'accrual' or 'redemption'")
        fingerprint = _batch_fingerprint(purpose, atomic, items)
        for attempt in range(2):
            version = await self._contracts.require_grant(partner_id, purpose)
            try:
                outcomes = await self._post(
                    partner_id,
                    purpose,
                    version,
                    items,
                    atomic,
                    idempotency_key,
                    fingerprint,
                    evidence,
                )
            except KeyTaken:
                return await self._replay(partner_id, idempotency_key, fingerprint)
            except ContractChanged:
                self._contracts.forget()
                if attempt:
                    raise
                continue
            return PostedBatch(outcomes)
        raise AssertionError("unreachable")

    async def _post(
        self,
        partner_id: str,
        purpose: Purpose,
        version: ContractVersion,
        items: Sequence[BatchItem],
        atomic: bool,
        idempotency_key: str,
        fingerprint: bytes,
        evidence: Evidence,
    ) -> tuple[ItemOutcome, ...]:
        outcomes: list[ItemOutcome | None] = [None] * len(items)
        prepared: list[_Prepared] = []
        for index, item in enumerate(items):
            try:
                prepared.append(_prepare(partner_id, purpose, version, index, item))
            except ClearhouseError as error:
                outcomes[index] = ItemRefused.of(error, index)
        if atomic:
            _refuse_if_any(outcomes)
        async with refusals_as_errors(), self._database.transaction() as connection:
            await store.insert_batch_key(connection, partner_id, idempotency_key, fingerprint)
            rows = []
            if prepared:
                rows = await store.record_items(
                    connection,
                    partner_id,
                    [p.draft for p in prepared],
                    atomic=atomic,
                    evidence=evidence,
                    zone=self._zone,
                    expiry=self._expiry,
                )
            taken = [
                prepared[r.position].item.idempotency_key for r in rows if r.refusal == store.TAKEN
            ]
            keyed = await store.fetch_keyed(connection, partner_id, taken)
            for row in rows:
                done = prepared[row.position]
                outcomes[done.index] = _outcome(done, row, keyed)
            metadata = []
            for row in rows:
                done = prepared[row.position]
                kept = done.item.request.metadata_json
                if row.refusal is None and row.recorded_at is not None and kept is not None:
                    metadata.append((done.draft.entry_id, purpose.value, kept, row.recorded_at))
            await insert_metadata_rows(connection, metadata)
            if atomic:
                _refuse_if_any(outcomes)
            final = _complete(outcomes)
            await store.insert_batch(
                connection,
                partner_id,
                idempotency_key,
                atomic,
                [outcome_record(outcome) for outcome in final],
            )
        for outcome in final:
            if isinstance(outcome, ItemPosted) and not outcome.replayed:
                ENTRIES_POSTED.labels(outcome.entry.kind.value).inc()
        return final

    async def _replay(
        self, partner_id: str, idempotency_key: str, fingerprint: bytes
    ) -> PostedBatch:
        """The answer an earlier batch under this key was given, or why there is none."""
        async with self._database.driver_connection() as connection:
            found = await store.fetch_batch(connection, partner_id, idempotency_key)
            if found is None:  # the first batch rolled back after we met its key
                raise IdempotencyKeyInUse(
                    "the first request with this Idempotency-Key did not complete"
                )
            stored_fingerprint, _, records = found
            if records is None:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used before for another operation"
                )
            if stored_fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used before with a different batch"
                )
            ids = [i for i in (entry_of_record(r) for r in records) if i is not None]
            entries = {e.entry_id: e for e in await store.fetch_entries(connection, ids)}
        return PostedBatch(tuple(outcome_of(r, entries) for r in records), replayed=True)


def _prepare(
    partner_id: str, purpose: Purpose, version: ContractVersion, index: int, item: BatchItem
) -> _Prepared:
    """The item as the ledger records it, once it passed the checks that need no database."""
    try:
        validate_idempotency_key(item.idempotency_key)
    except InvalidRequest as error:
        raise InvalidRequest(error.detail, field="idempotency_key") from error
    refusal = purpose_refusal(purpose, item.kind)
    if refusal is not None:
        raise PurposeNotPermitted(refusal)
    request = item.request
    validate_points_request(request)
    check_points_limit(version, request.points)
    if item.kind is EntryKind.ISSUE:
        draft = rules.issue_points(partner_id, request.member_id, request.points)
    else:
        draft = rules.redeem_points(partner_id, request.member_id, request.points)
    fields = _item_fields(item)
    return _Prepared(
        index,
        item,
        store.ItemDraft(
            entry_id=uuid4(),
            draft=draft,
            contract_version=version.version,
            occurred_at=request.occurred_at,
            reference=request.reference,
            idempotency_key=item.idempotency_key,
            request_sha256=request_fingerprint(item.kind.value, fields),
        ),
        fields,
    )


def _item_fields(item: BatchItem) -> dict[str, object]:
    """What the item's fingerprint covers: what a single request's would."""
    request = item.request
    return request_fields(
        item.kind,
        request.member_id,
        request.points,
        request.occurred_at,
        request.reference,
        None,
        request.metadata_json,
    )


def _outcome(
    done: _Prepared, row: store.ItemRow, keyed: dict[str, tuple[bytes, Entry | None]]
) -> ItemOutcome:
    """What the database's answer for an item means."""
    draft = done.draft
    if row.refusal is None:
        assert row.recorded_at is not None
        return ItemPosted(
            Entry(
                entry_id=draft.entry_id,
                kind=draft.draft.kind,
                partner_id=draft.draft.partner_id,
                member_id=draft.draft.member_id,
                points=draft.draft.points,
                member_balance_after=row.balance,
                contract_version=draft.contract_version,
                occurred_at=draft.occurred_at,
                recorded_at=row.recorded_at,
                reference=draft.reference,
                reversal_of=None,
            )
        )
    error: ClearhouseError | None
    if row.refusal == store.TAKEN:
        found = keyed.get(draft.idempotency_key)
        if found is None:  # its first request rolled back after we met its key
            error = IdempotencyKeyInUse("the first request with this key did not complete")
        elif found[1] is not None and found[0] == draft.request_sha256:
            return ItemPosted(found[1], replayed=True)
        else:
            error = key_reused(found[1], done.fields)
    elif row.refusal == store.IN_USE:
        error = IdempotencyKeyInUse("a request with this key is still being processed")
    elif row.refusal == store.BUSY:
        error = Unavailable("the ledger is busy with this member; the item was not written")
    else:
        error = refusal_error(row.refusal, row.message or "")
        assert error is not None, f"ledger_post_batch answered {row.refusal}"
    return ItemRefused.of(error, done.index)


def _refuse_if_any(outcomes: Sequence[ItemOutcome | None]) -> None:
    refused = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, ItemRefused)]
    if refused:
        count = len(refused)
        raise BatchNotApplied(
            f"{count} item{'s' if count > 1 else ''} refused; nothing of the batch was written",
            refused,
        )


def _complete(outcomes: Sequence[ItemOutcome | None]) -> tuple[ItemOutcome, ...]:
    done = tuple(o for o in outcomes if o is not None)
    assert len(done) == len(outcomes), "every item has its outcome"
    return done


def _batch_fingerprint(purpose: Purpose, atomic: bool, items: Sequence[BatchItem]) -> bytes:
    """What a batch's key stands for: its purpose, atomicity and items, keys included."""
    return request_fingerprint(
        "batch",
        {
            "purpose": purpose.value,
            "atomic": atomic,
            "items": [
                {"idempotency_key": item.idempotency_key, **_item_fields(item)} for item in items
            ],
        },
    )
