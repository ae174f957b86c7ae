"""Reading and writing the ledger: one call records an entry, set-based queries read it back.

``record_entry`` is the hot path: one round trip to the ``ledger_post`` function on the driver
connection, in autocommit, so the idempotency key, the member's conditional balance update,
the entry and its postings commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg

from clearhouse.domain.expiry import NO_EXPIRY, ExpiryPolicy
from clearhouse.domain.ledger import EntryDraft, EntryKind, Posting, RecordedEntry
from clearhouse.domain.records import Entry, Evidence

# The SQLSTATEs ledger_post raises, and their domain errors: clearhouse.storage.sqlstates.
IDEMPOTENCY_CONSTRAINT = "idempotency_keys_pkey"

_POST = """
SELECT recorded_at, member_balance_after FROM ledger_post(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
    $22, $23, $24)
"""


async def record_entry(
    connection: asyncpg.Connection,
    entry_id: UUID,
    draft: EntryDraft,
    *,
    contract_version: int | None,
    occurred_at: datetime | None,
    reference: str | None,
    idempotency_key: str | None,
    request_sha256: bytes | None,
    evidence: Evidence,
    zone: str,
    hold_id: UUID | None = None,
    expiry: ExpiryPolicy = NO_EXPIRY,
) -> tuple[datetime, int | None]:
    """Record ``draft`` as entry ``entry_id``; returns ``(recorded_at, member_balance_after)``.

    With ``hold_id`` the entry is the capture of that hold (a redeem): the hold ends in the same
    call, and its points are released from the member's held points."""
    row = await connection.fetchrow(
        _POST,
        entry_id,
        draft.kind.value,
        draft.partner_id,
        draft.member_id,
        draft.points,
        draft.member_delta_points,
        contract_version,
        occurred_at,
        reference,
        draft.reversal_of,
        [p.account for p in draft.postings],
        [p.asset for p in draft.postings],
        [Decimal(p.amount) for p in draft.postings],
        idempotency_key,
        request_sha256,
        evidence.signature_input,
        evidence.signature,
        evidence.content_digest,
        zone,
        evidence.signature_base,
        hold_id,
        expiry.lot_months,
        expiry.align,
        expiry.reinstatement_days,
    )
    assert row is not None
    return row["recorded_at"], row["member_balance_after"]


ENTRY_COLUMNS = """
    e.entry_id, e.kind, e.partner_id, e.member_id, e.points, e.member_balance_after,
    e.contract_version, e.occurred_at, e.recorded_at, e.reference, e.reversal_of
"""


def entry_row(row: asyncpg.Record) -> Entry:
    return Entry(
        entry_id=row["entry_id"],
        kind=EntryKind(row["kind"]),
        partner_id=row["partner_id"],
        member_id=row["member_id"],
        points=row["points"],
        member_balance_after=row["member_balance_after"],
        contract_version=row["contract_version"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        reference=row["reference"],
        reversal_of=row["reversal_of"],
    )


async def fetch_entry(connection: asyncpg.Connection, entry_id: UUID) -> Entry | None:
    row = await connection.fetchrow(
        f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.entry_id = $1", entry_id
    )
    return None if row is None else entry_row(row)


async def fetch_reversible(connection: asyncpg.Connection, entry_id: UUID) -> RecordedEntry | None:
    """The entry with its postings and the points already reversed, in one query."""
    row = await connection.fetchrow(
        """
        SELECT e.entry_id, e.kind, e.partner_id, e.member_id, e.points, e.contract_version,
               (SELECT coalesce(sum(r.points), 0) FROM entries r
                 WHERE r.reversal_of = e.entry_id) AS reversed_points,
               (SELECT array_agg(ROW(p.account, p.asset, p.amount) ORDER BY p.seq)
                  FROM postings p WHERE p.entry_id = e.entry_id) AS postings
          FROM entries e WHERE e.entry_id = $1
        """,
        entry_id,
    )
    if row is None:
        return None
    postings = tuple(
        Posting(account, asset, int(amount) if asset == "PTS" else amount)
        for account, asset, amount in row["postings"]
    )
    return RecordedEntry(
        entry_id=row["entry_id"],
        kind=EntryKind(row["kind"]),
        partner_id=row["partner_id"],
        member_id=row["member_id"],
        points=row["points"],
        postings=postings,
        reversed_points=int(row["reversed_points"]),
        contract_version=row["contract_version"],
    )


async def fetch_idempotent(
    connection: asyncpg.Connection, partner_id: str, idempotency_key: str
) -> tuple[bytes, Entry | None] | None:
    """The fingerprint of an earlier request under this key, and its entry if it made one.

    A key that made no entry was used for another operation (an enrolment); ``None``: the key
    is not recorded (unused, or its first request rolled back).
    """
    row = await connection.fetchrow(
        f"""
        SELECT k.request_sha256, k.entry_id AS key_entry_id, {ENTRY_COLUMNS}
          FROM idempotency_keys k LEFT JOIN entries e ON e.entry_id = k.entry_id
         WHERE k.partner_id = $1 AND k.idempotency_key = $2
        """,
        partner_id,
        idempotency_key,
    )
    if row is None:
        return None
    entry = None if row["key_entry_id"] is None else entry_row(row)
    return bytes(row["request_sha256"]), entry


async def insert_partner(
    connection: asyncpg.Connection, partner_id: str, legal_name: str, accounts: Sequence[str]
) -> None:
    """A partner and its accounts, in the caller's transaction."""
    await connection.execute(
        "INSERT INTO partners (partner_id, legal_name) VALUES ($1, $2)", partner_id, legal_name
    )
    kinds = ("partner_issued", "partner_redeemed", "partner_settlement")
    await connection.executemany(
        "INSERT INTO accounts (account, kind, partner_id) VALUES ($1, $2, $3)",
        [(account, kind, partner_id) for account, kind in zip(accounts, kinds, strict=True)],
    )


async def insert_members(
    connection: asyncpg.Connection, member_ids: Sequence[str], accounts: Sequence[str]
) -> None:
    """Members with a zero balance and their accounts, set-based, in the caller's transaction."""
    await connection.execute(
        """
        WITH m AS (
            INSERT INTO members (member_id) SELECT unnest($1::text[]) RETURNING member_id
        ), b AS (
            INSERT INTO member_balances (member_id) SELECT member_id FROM m
        )
        INSERT INTO accounts (account, kind, member_id)
        SELECT a.account, 'member', a.member_id
          FROM unnest($2::text[], $1::text[]) AS a(account, member_id)
        """,
        list(member_ids),
        list(accounts),
    )


async def ledger_now(connection: asyncpg.Connection) -> datetime:
    value = await connection.fetchval("SELECT ledger_now()")
    assert isinstance(value, datetime)
    return value


async def set_ledger_clock(connection: asyncpg.Connection, at: datetime) -> datetime:
    """Shift the ledger clock so that it reads ``at`` now; it keeps ticking from there."""
    await connection.execute(
        "UPDATE ledger_clock SET offset_interval = $1::timestamptz - clock_timestamp()", at
    )
    return await ledger_now(connection)


async def member_balance(connection: asyncpg.Connection, member_id: str) -> int | None:
    value = await connection.fetchval(
        "SELECT balance_points FROM member_balances WHERE member_id = $1", member_id
    )
    return None if value is None else int(value)


async def invariant_violations(connection: asyncpg.Connection) -> list[str]:
    """Every broken ledger invariant of SPEC section 3 that the data shows, as sentences.

    Set-based: one query per invariant over the whole ledger.
    """
    problems: list[str] = []
    for row in await connection.fetch(
        """
        SELECT entry_id, asset, sum(amount) AS total FROM postings
         GROUP BY entry_id, asset HAVING sum(amount) <> 0
        """
    ):
        problems.append(f"entry {row['entry_id']} does not balance in {row['asset']}")
    for row in await connection.fetch(
        """
        SELECT e.entry_id FROM entries e
         WHERE (SELECT count(*) FROM postings p WHERE p.entry_id = e.entry_id) < 2
        """
    ):
        problems.append(f"entry {row['entry_id']} has fewer than two postings")
    for row in await connection.fetch(
        """
        SELECT b.member_id, b.balance_points, coalesce(p.total, 0) AS total
          FROM member_balances b
          LEFT JOIN (SELECT account, sum(amount) AS total FROM postings
                      WHERE asset = 'PTS' AND account LIKE 'member:%' GROUP BY account) p
                 ON p.account = 'member:' || b.member_id
         WHERE b.balance_points <> coalesce(p.total, 0) OR b.balance_points < 0
        """
    ):
        problems.append(
            f"member {row['member_id']} has balance {row['balance_points']} "
            f"but postings sum to {row['total']}"
        )
    for row in await connection.fetch(
        "SELECT asset, sum(amount) AS total FROM postings GROUP BY asset HAVING sum(amount) <> 0"
    ):
        problems.append(f"all accounts together hold {row['total']} {row['asset']}, not 0")
    for row in await connection.fetch(
        """
        SELECT o.entry_id, o.points, sum(r.points) AS reversed
          FROM entries o JOIN entries r ON r.reversal_of = o.entry_id
         GROUP BY o.entry_id, o.points HAVING sum(r.points) > o.points
        """
    ):
        problems.append(f"entry {row['entry_id']} is reversed by more than its points")
    for row in await connection.fetch(
        """
        SELECT b.member_id, b.balance_points, coalesce(l.total, 0) AS total
          FROM member_balances b
          LEFT JOIN (SELECT member_id, sum(remaining) AS total FROM lots GROUP BY member_id) l
                 ON l.member_id = b.member_id
         WHERE b.balance_points <> coalesce(l.total, 0)
        """
    ):
        problems.append(
            f"member {row['member_id']} has balance {row['balance_points']} "
            f"but its lots hold {row['total']}"
        )
    for row in await connection.fetch(
        """
        SELECT l.lot_id FROM lots l
         WHERE l.remaining <> l.points - coalesce((SELECT sum(c.points) FROM lot_consumptions c
                                                    WHERE c.lot_id = l.lot_id), 0)
        """
    ):
        problems.append(f"lot {row['lot_id']} does not hold its points less its consumptions")
    for row in await connection.fetch(
        """
        SELECT e.entry_id, e.points, coalesce(sum(c.points), 0) AS taken
          FROM entries e LEFT JOIN lot_consumptions c ON c.entry_id = e.entry_id
         WHERE e.kind IN ('redeem', 'expiry')
           AND e.recorded_at >= (SELECT coalesce(min(recorded_at), 'infinity') FROM lots
                                  WHERE entry_id IS NOT NULL)
         GROUP BY e.entry_id, e.points HAVING coalesce(sum(c.points), 0) <> e.points
        """
    ):
        problems.append(
            f"entry {row['entry_id']} took {row['taken']} points of lots, not {row['points']}"
        )
    return problems


_INSERT_METADATA = """
INSERT INTO entry_metadata (entry_id, purpose, metadata, recorded_at)
VALUES ($1, $2, $3::jsonb, $4)
"""


async def insert_metadata(
    connection: asyncpg.Connection,
    entry_id: UUID,
    purpose: str,
    metadata_json: str,
    recorded_at: datetime,
) -> None:
    await connection.execute(_INSERT_METADATA, entry_id, purpose, metadata_json, recorded_at)


async def insert_metadata_rows(
    connection: asyncpg.Connection, rows: Sequence[tuple[UUID, str, str, datetime]]
) -> None:
    """The metadata of many entries, ``(entry_id, purpose, metadata_json, recorded_at)`` each,
    in one pipelined call."""
    if rows:
        await connection.executemany(_INSERT_METADATA, rows)


async def fetch_partner_entries(
    connection: asyncpg.Connection,
    partner_id: str,
    start: datetime,
    end: datetime,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Entry]:
    """A page of the partner's entries recorded in ``[start, end)``, keyset-ordered."""
    after_at, after_id = after if after is not None else (None, None)
    rows = await connection.fetch(
        f"""
        SELECT {ENTRY_COLUMNS} FROM entries e
         WHERE e.partner_id = $1 AND e.recorded_at >= $2 AND e.recorded_at < $3
           AND ($4::timestamptz IS NULL OR (e.recorded_at, e.entry_id) > ($4, $5::uuid))
         ORDER BY e.recorded_at, e.entry_id
         LIMIT $6
        """,
        partner_id,
        start,
        end,
        after_at,
        after_id,
        limit,
    )
    return [entry_row(row) for row in rows]


async def fetch_entries(
    connection: asyncpg.Connection,
    start: datetime,
    end: datetime,
    partner_id: str | None,
    limit: int,
) -> list[Entry]:
    """The first ``limit`` entries recorded in ``[start, end)`` (of one partner if given)."""
    rows = await connection.fetch(
        f"""
        SELECT {ENTRY_COLUMNS} FROM entries e
         WHERE e.recorded_at >= $1 AND e.recorded_at < $2
           AND ($3::text IS NULL OR e.partner_id = $3)
         ORDER BY e.recorded_at, e.entry_id
         LIMIT $4
        """,
        start,
        end,
        partner_id,
        limit,
    )
    return [entry_row(row) for row in rows]
