"""Reading and writing holds: one call each to the hold functions, set-based reads.

``authorize`` and ``void`` are one round trip each (``hold_authorize``, ``hold_void``) on the
driver connection in autocommit, like ``storage.ledger.record_entry``; a capture is a redeem
entry recorded through ``record_entry`` with the hold's id. Every answer a partner gets about a
change of a hold is built from the hold and that change's event (``fetch_change``), so a replay
of the same Idempotency-Key answers with the same body, whatever happened to the hold since.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from clearhouse.domain.holds import Hold, HoldStatus, MemberPoints, status_at
from clearhouse.domain.records import Evidence

_AUTHORIZE: Final = """
SELECT created_at, expires_at FROM hold_authorize(
    $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15)
"""

_HOLD_COLUMNS: Final = """
    h.hold_id, h.partner_id, h.member_id, h.points, h.status, h.reference, h.occurred_at,
    h.created_at, h.expires_at, h.closed_at, h.captured_points, h.capture_entry_id,
    h.contract_version
"""


@dataclass(frozen=True, slots=True)
class HoldKey:
    """What an Idempotency-Key made before: its fingerprint, and the hold and entry if any."""

    request_sha256: bytes
    hold_id: UUID | None
    entry_id: UUID | None


@dataclass(frozen=True, slots=True)
class HoldChange:
    """A hold as one of its events left it, with the member's points right after."""

    hold: Hold
    member: MemberPoints
    entry_id: UUID | None


async def authorize(
    connection: asyncpg.Connection,
    hold_id: UUID,
    *,
    partner_id: str,
    member_id: str,
    points: int,
    hold_seconds: int,
    contract_version: int,
    occurred_at: datetime,
    reference: str,
    metadata_json: str | None,
    idempotency_key: str,
    request_sha256: bytes,
    evidence: Evidence,
) -> None:
    await connection.fetchrow(
        _AUTHORIZE,
        hold_id,
        partner_id,
        member_id,
        points,
        hold_seconds,
        contract_version,
        occurred_at,
        reference,
        metadata_json,
        idempotency_key,
        request_sha256,
        evidence.signature_input,
        evidence.signature,
        evidence.content_digest,
        evidence.signature_base,
    )


async def void(
    connection: asyncpg.Connection,
    hold_id: UUID,
    *,
    partner_id: str,
    reason: str | None,
    idempotency_key: str,
    request_sha256: bytes,
) -> None:
    await connection.fetchrow(
        "SELECT closed_at FROM hold_void($1, $2, $3, $4, $5)",
        hold_id,
        partner_id,
        reason,
        idempotency_key,
        request_sha256,
    )


async def expire_due(connection: asyncpg.Connection, limit: int) -> int:
    """End up to ``limit`` holds whose time ran out; how many it ended (0 while another runs)."""
    ended = await connection.fetchval("SELECT holds_expire($1)", limit)
    return int(ended)


def _hold(row: asyncpg.Record, now: datetime | None = None) -> Hold:
    """The hold of ``row``; with ``now``, one whose time ran out reads expired (closed when its
    time ran out), released yet or not."""
    recorded = HoldStatus(row["status"])
    status = recorded if now is None else status_at(recorded, row["expires_at"], now)
    closed_at = row["expires_at"] if status is not recorded else row["closed_at"]
    return Hold(
        hold_id=row["hold_id"],
        partner_id=row["partner_id"],
        member_id=row["member_id"],
        points=row["points"],
        status=status,
        reference=row["reference"],
        occurred_at=row["occurred_at"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        closed_at=closed_at,
        captured_points=row["captured_points"],
        capture_entry_id=row["capture_entry_id"],
        contract_version=row["contract_version"],
    )


async def fetch_change(
    connection: asyncpg.Connection, hold_id: UUID, *, final: bool
) -> HoldChange | None:
    """The hold as its authorization (``final`` False) or its final event left it."""
    row = await connection.fetchrow(
        f"""
        SELECT {_HOLD_COLUMNS}, ev.event, ev.recorded_at AS event_at,
               ev.member_balance_after, ev.member_held_after, ev.entry_id AS event_entry_id
          FROM holds h JOIN hold_events ev ON ev.hold_id = h.hold_id AND ev.final = $2
         WHERE h.hold_id = $1
        """,
        hold_id,
        final,
    )
    if row is None:
        return None
    hold = _hold(row)
    if not final:
        # As authorized: open, nothing captured yet, whatever became of it later.
        hold = replace(
            hold,
            status=HoldStatus.OPEN,
            closed_at=None,
            captured_points=None,
            capture_entry_id=None,
        )
    return HoldChange(
        hold,
        MemberPoints(row["member_balance_after"], row["member_held_after"]),
        row["event_entry_id"],
    )


async def fetch_key(
    connection: asyncpg.Connection, partner_id: str, idempotency_key: str
) -> HoldKey | None:
    row = await connection.fetchrow(
        """
        SELECT request_sha256, hold_id, entry_id FROM idempotency_keys
         WHERE partner_id = $1 AND idempotency_key = $2
        """,
        partner_id,
        idempotency_key,
    )
    if row is None:
        return None
    return HoldKey(bytes(row["request_sha256"]), row["hold_id"], row["entry_id"])


async def fetch_hold(
    connection: asyncpg.Connection, hold_id: UUID, partner_id: str | None
) -> Hold | None:
    """The hold (the partner's own when ``partner_id`` is given), its status as of now."""
    row = await connection.fetchrow(
        f"""
        SELECT {_HOLD_COLUMNS}, ledger_now() AS now FROM holds h
         WHERE h.hold_id = $1 AND ($2::text IS NULL OR h.partner_id = $2)
        """,
        hold_id,
        partner_id,
    )
    return None if row is None else _hold(row, row["now"])


async def holds_page(
    connection: asyncpg.Connection,
    *,
    partner_id: str | None,
    status: HoldStatus | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Hold]:
    """Holds in the order they were made, after the keyset ``after``; ``status`` as of now (an
    open hold past its time is listed as expired)."""
    rows = await connection.fetch(
        f"""
        WITH clock AS (SELECT ledger_now() AS now)
        SELECT {_HOLD_COLUMNS}, clock.now FROM holds h, clock
         WHERE ($1::text IS NULL OR h.partner_id = $1)
           AND ($2::text IS NULL
                OR ($2 = 'open' AND h.status = 'open' AND h.expires_at > clock.now)
                OR ($2 = 'expired' AND (h.status = 'expired'
                                        OR (h.status = 'open' AND h.expires_at <= clock.now)))
                OR ($2 IN ('captured', 'voided') AND h.status = $2))
           AND ($3::timestamptz IS NULL OR (h.created_at, h.hold_id) > ($3, $4::uuid))
         ORDER BY h.created_at, h.hold_id
         LIMIT $5
        """,
        partner_id,
        None if status is None else status.value,
        None if after is None else after[0],
        None if after is None else after[1],
        limit,
    )
    return [_hold(row, row["now"]) for row in rows]


async def open_at(connection: asyncpg.Connection, cut_off: datetime) -> tuple[int, int]:
    """The holds open at ``cut_off`` (made before it, neither ended nor run out by then): how
    many, and the points they held."""
    row = await connection.fetchrow(
        """
        SELECT count(*) AS holds, coalesce(sum(points), 0) AS points FROM holds
         WHERE created_at < $1 AND expires_at > $1 AND (closed_at IS NULL OR closed_at >= $1)
        """,
        cut_off,
    )
    assert row is not None
    return int(row["holds"]), int(row["points"])


async def fetch_metadata(connection: asyncpg.Connection, hold_id: UUID) -> str | None:
    """What the partner sent with the authorization, as JSON (None once the hold ended)."""
    found = await connection.fetchval(
        "SELECT metadata::text FROM holds WHERE hold_id = $1", hold_id
    )
    return None if found is None else str(found)
