"""The two ways the ledger benchmark posts an entry: through the ledger service as the HTTP
handlers do, and "bare": one ``SELECT ledger_post(...)`` on a plain asyncpg pool, of the mix or
(the lot runs) a redeem of a given member."""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import uuid4

import asyncpg

from clearhouse.bench.ledger.coalition import (
    BENCH_CONTRACT_VERSION,
    BENCH_ZONE,
    ISSUE_SHARE,
    POINTS_MAX,
)
from clearhouse.bench.ledger.driving import Post, PostFor
from clearhouse.domain.errors import InsufficientPoints
from clearhouse.services.posting import Ledger, PointsRequest
from clearhouse.storage.sqlstates import SQLSTATE_INSUFFICIENT_POINTS

BARE_POST: Final = """
SELECT recorded_at, member_balance_after FROM ledger_post(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
    $22, $23, $24)
"""
"""The live ``ledger_post`` called positionally with all its parameters, as
``storage.ledger.record_entry`` calls it (a test holds the count against the live function)."""
_POINTS_ASSET: Final = ["PTS", "PTS"]


def pick(
    rng: random.Random, partner_ids: Sequence[str], member_ids: Sequence[str]
) -> tuple[str, str, int, bool]:
    """A partner, a member, the points and whether it is an issue (else a redeem)."""
    partner_id = partner_ids[rng.randrange(len(partner_ids))]
    member_id = member_ids[rng.randrange(len(member_ids))]
    return partner_id, member_id, rng.randint(1, POINTS_MAX), rng.random() < ISSUE_SHARE


def service_post(ledger: Ledger, partner_ids: Sequence[str], member_ids: Sequence[str]) -> Post:
    """Posts through the ledger service, as the HTTP handlers do, without HTTP."""

    async def post(rng: random.Random, key: str) -> bool:
        partner_id, member_id, points, issue = pick(rng, partner_ids, member_ids)
        request = PointsRequest(member_id, points, datetime.now(UTC), "bench")
        try:
            if issue:
                await ledger.issue(partner_id, request, idempotency_key=key)
            else:
                await ledger.redeem(partner_id, request, idempotency_key=key)
        except InsufficientPoints:
            return False
        return True

    return post


def bare_post(pool: Any, partner_ids: Sequence[str], member_ids: Sequence[str]) -> Post:
    """Posts the mix with one ``SELECT ledger_post(...)`` per entry."""

    async def post(rng: random.Random, key: str) -> bool:
        partner_id, member_id, points, issue = pick(rng, partner_ids, member_ids)
        return await _bare_ledger_post(pool, key, partner_id, member_id, points, issue)

    return post


def bare_redeem(pool: Any, partner_ids: Sequence[str], points: int) -> PostFor:
    """Redeems ``points`` of the member it is given, by the partners in turn."""
    turn = itertools.count()

    async def post(member_id: str, key: str) -> bool:
        partner_id = partner_ids[next(turn) % len(partner_ids)]
        return await _bare_ledger_post(pool, key, partner_id, member_id, points, issue=False)

    return post


async def _bare_ledger_post(
    pool: Any, key: str, partner_id: str, member_id: str, points: int, issue: bool
) -> bool:
    """One ``ledger_post`` of an issue or a redeem; False when it was refused (no points)."""
    member = f"member:{member_id}"
    if issue:
        kind, delta, accounts = "issue", points, [f"partner:{partner_id}:issued", member]
    else:
        kind, delta, accounts = "redeem", -points, [member, f"partner:{partner_id}:redeemed"]
    try:
        await pool.fetchrow(
            BARE_POST,
            uuid4(),
            kind,
            partner_id,
            member_id,
            points,
            delta,
            BENCH_CONTRACT_VERSION,
            datetime.now(UTC),
            "bench",
            None,
            accounts,
            _POINTS_ASSET,
            [Decimal(-points), Decimal(points)],
            key,
            hashlib.sha256(key.encode()).digest(),
            None,  # p_signature_input: no signed request, as in the seed and the service
            None,  # p_signature
            None,  # p_content_digest
            BENCH_ZONE,
            None,  # p_signature_base
            None,  # p_hold_id: not a capture
            None,  # p_lot_months: the lot never expires, as the service's default policy
            "exact",  # p_lot_align
            30,  # p_reinstate_days
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == SQLSTATE_INSUFFICIENT_POINTS:
            return False
        raise
    return True
