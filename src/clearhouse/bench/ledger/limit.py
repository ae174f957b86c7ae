"""The machine's posting limit: the writes of an entry as one plain statement, nothing else.

One data-modifying CTE per entry does what every posting must write at least: the member's
conditional balance update (never below the available points), the idempotency key, the entry
and its two postings, all hanging off the balance update, so a refused redeem writes nothing. No
function, no trigger, no foreign key: it writes to copies of the four tables in schema ``bare``
(``CREATE TABLE ... (LIKE ... INCLUDING ALL)``: the same columns, defaults, CHECKs and indexes),
the balances copied from the seeded ones. What ``ledger_post`` and the service do beyond this
(the period, the contract and its limits, erasure, holds, lots, the outbox, the checks at commit)
is what the ratios against this figure price.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import uuid4

from clearhouse.bench.ledger.coalition import BENCH_CONTRACT_VERSION
from clearhouse.bench.ledger.driving import Post
from clearhouse.bench.ledger.posting import pick

BARE_TABLES: Final = """
DROP SCHEMA IF EXISTS bare CASCADE;
CREATE SCHEMA bare;
CREATE TABLE bare.member_balances (LIKE public.member_balances INCLUDING ALL);
CREATE TABLE bare.idempotency_keys (LIKE public.idempotency_keys INCLUDING ALL);
CREATE TABLE bare.entries (LIKE public.entries INCLUDING ALL);
CREATE TABLE bare.postings (LIKE public.postings INCLUDING ALL);
INSERT INTO bare.member_balances SELECT * FROM public.member_balances;
ANALYZE bare.member_balances;
"""
"""Trigger-free, foreign-key-free copies of the tables an entry writes, in the bench database."""

BARE_STATEMENT: Final = """
WITH balance AS (
    UPDATE bare.member_balances b SET balance_points = b.balance_points + $6
     WHERE b.member_id = $4 AND b.balance_points + $6 - b.held_points >= 0
    RETURNING b.balance_points
), keyed AS (
    INSERT INTO bare.idempotency_keys (partner_id, idempotency_key, request_sha256, entry_id)
    SELECT $3, $7, $8, $1 FROM balance
), entry AS (
    INSERT INTO bare.entries (entry_id, kind, partner_id, member_id, points, member_balance_after,
                              contract_version, occurred_at, recorded_at, reference,
                              idempotency_key)
    SELECT $1, $2, $3, $4, $5, b.balance_points, $9, $10, clock_timestamp(), 'bench', $7
      FROM balance b
    RETURNING recorded_at, member_balance_after
), posted AS (
    INSERT INTO bare.postings (entry_id, seq, account, asset, amount)
    SELECT $1, t.seq, t.account, 'PTS', t.amount
      FROM balance, unnest($11::text[], $12::numeric[]) WITH ORDINALITY AS t(account, amount, seq)
)
SELECT recorded_at, member_balance_after FROM entry
"""
"""$1 entry id, $2 kind, $3 partner, $4 member, $5 points, $6 the member's delta, $7 the
idempotency key, $8 the request's SHA-256, $9 contract version, $10 occurred at, $11 the two
accounts, $12 their amounts. No row back: refused (not enough points available)."""


async def prepare_bare_tables(connection: Any) -> None:
    """The ``bare`` copies, the balances as seeded (call after the seed)."""
    await connection.execute(BARE_TABLES)


async def bare_entries(connection: Any) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM bare.entries"))


def bare_statement_post(pool: Any, partner_ids: Sequence[str], member_ids: Sequence[str]) -> Post:
    """Posts the mix with one ``BARE_STATEMENT`` per entry, in autocommit."""

    async def post(rng: random.Random, key: str) -> bool:
        partner_id, member_id, points, issue = pick(rng, partner_ids, member_ids)
        member = f"member:{member_id}"
        if issue:
            kind, delta, accounts = "issue", points, [f"partner:{partner_id}:issued", member]
        else:
            kind, delta, accounts = "redeem", -points, [member, f"partner:{partner_id}:redeemed"]
        row = await pool.fetchrow(
            BARE_STATEMENT,
            uuid4(),
            kind,
            partner_id,
            member_id,
            points,
            delta,
            key,
            hashlib.sha256(key.encode()).digest(),
            BENCH_CONTRACT_VERSION,
            datetime.now(UTC),
            accounts,
            [Decimal(-points), Decimal(points)],
        )
        return row is not None

    return post
