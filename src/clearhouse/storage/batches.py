"""Reading and writing batches: the items in one call of ``ledger_post_batch``, the batch's key
and what it answered.

Everything here runs in the caller's transaction: the batch's key first (a concurrent twin
waits on its index, then meets it), then its items, then its outcomes, committed together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from clearhouse.domain.expiry import NO_EXPIRY, ExpiryPolicy
from clearhouse.domain.ledger import EntryDraft
from clearhouse.domain.records import Entry, Evidence
from clearhouse.storage.ledger import ENTRY_COLUMNS, entry_row

_POST_BATCH = """
SELECT item, recorded_at, member_balance_after, refusal, message FROM ledger_post_batch(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
    $22, $23, $24)
"""

TAKEN = "taken"
"""The item's key was recorded before: a replay, or a reuse."""
IN_USE = "in_use"
"""A request under the item's key is still at work."""
BUSY = "busy"
"""A lock the item needed was not granted in time (or a deadlock was broken)."""


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """An item as ``ledger_post_batch`` records it."""

    entry_id: UUID
    draft: EntryDraft
    contract_version: int
    occurred_at: datetime
    reference: str
    idempotency_key: str
    request_sha256: bytes


@dataclass(frozen=True, slots=True)
class ItemRow:
    """What the database said of an item: recorded (``recorded_at`` and the member's balance)
    or refused (``refusal``: a ``CH`` SQLSTATE with its ``message``, ``TAKEN``, ``IN_USE`` or
    ``BUSY``)."""

    position: int
    recorded_at: datetime | None
    balance: int | None
    refusal: str | None
    message: str | None


async def record_items(
    connection: asyncpg.Connection,
    partner_id: str,
    items: Sequence[ItemDraft],
    *,
    atomic: bool,
    evidence: Evidence,
    zone: str,
    expiry: ExpiryPolicy = NO_EXPIRY,
) -> list[ItemRow]:
    """Record ``items`` in one round trip; a row per item, in order (an atomic batch's rows end
    at its first refusal)."""
    postings = [p for item in items for p in item.draft.postings]
    rows = await connection.fetch(
        _POST_BATCH,
        partner_id,
        atomic,
        [i.entry_id for i in items],
        [i.draft.kind.value for i in items],
        [i.draft.member_id for i in items],
        [i.draft.points for i in items],
        [i.draft.member_delta_points for i in items],
        [i.contract_version for i in items],
        [i.occurred_at for i in items],
        [i.reference for i in items],
        [len(i.draft.postings) for i in items],
        [p.account for p in postings],
        [p.asset for p in postings],
        [Decimal(p.amount) for p in postings],
        [i.idempotency_key for i in items],
        [i.request_sha256 for i in items],
        evidence.signature_input,
        evidence.signature,
        evidence.content_digest,
        zone,
        evidence.signature_base,
        expiry.lot_months,
        expiry.align,
        expiry.reinstatement_days,
    )
    return [
        ItemRow(r["item"], r["recorded_at"], r["member_balance_after"], r["refusal"], r["message"])
        for r in rows
    ]


async def insert_batch_key(
    connection: asyncpg.Connection, partner_id: str, idempotency_key: str, request_sha256: bytes
) -> None:
    """The batch's key, first: a twin of the batch waits here, then fails on it."""
    await connection.execute(
        "INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256)"
        " VALUES ($1, $2, $3)",
        partner_id,
        idempotency_key,
        request_sha256,
    )


async def insert_batch(
    connection: asyncpg.Connection,
    partner_id: str,
    idempotency_key: str,
    atomic: bool,
    outcomes: Sequence[dict[str, Any]],
) -> None:
    await connection.execute(
        "INSERT INTO transaction_batches (partner_id, idempotency_key, atomic, items, outcomes)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        partner_id,
        idempotency_key,
        atomic,
        len(outcomes),
        json.dumps(list(outcomes)),
    )


async def fetch_batch(
    connection: asyncpg.Connection, partner_id: str, idempotency_key: str
) -> tuple[bytes, bool, list[dict[str, Any]] | None] | None:
    """What a batch's key was recorded with: its fingerprint, and the batch's atomicity and kept
    outcomes (None: the key made something else). None when the key is not recorded."""
    row = await connection.fetchrow(
        """
        SELECT k.request_sha256, b.atomic, b.outcomes::text AS outcomes
          FROM idempotency_keys k
          LEFT JOIN transaction_batches b
            ON b.partner_id = k.partner_id AND b.idempotency_key = k.idempotency_key
         WHERE k.partner_id = $1 AND k.idempotency_key = $2
        """,
        partner_id,
        idempotency_key,
    )
    if row is None:
        return None
    outcomes = None if row["outcomes"] is None else json.loads(row["outcomes"])
    return bytes(row["request_sha256"]), bool(row["atomic"]), outcomes


async def fetch_keyed(
    connection: asyncpg.Connection, partner_id: str, keys: Sequence[str]
) -> dict[str, tuple[bytes, Entry | None]]:
    """For each of ``keys`` recorded, its fingerprint and the entry it made (None: it made
    something else), in one query."""
    if not keys:
        return {}
    rows = await connection.fetch(
        f"""
        SELECT k.idempotency_key, k.request_sha256, k.entry_id AS key_entry_id, {ENTRY_COLUMNS}
          FROM idempotency_keys k LEFT JOIN entries e ON e.entry_id = k.entry_id
         WHERE k.partner_id = $1 AND k.idempotency_key = ANY($2::text[])
        """,
        partner_id,
        list(keys),
    )
    return {
        r["idempotency_key"]: (
            bytes(r["request_sha256"]),
            None if r["key_entry_id"] is None else entry_row(r),
        )
        for r in rows
    }


async def fetch_entries(connection: asyncpg.Connection, entry_ids: Sequence[UUID]) -> list[Entry]:
    """The entries of ``entry_ids``, in one query (in no particular order)."""
    rows = await connection.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.entry_id = ANY($1::uuid[])",
        list(entry_ids),
    )
    return [entry_row(r) for r in rows]
