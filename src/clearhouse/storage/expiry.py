"""The expiry run's statements: its lock, one batch of members at a time, and members' lots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from clearhouse.domain.expiry import ExpiringPoints


@dataclass(frozen=True, slots=True)
class ExpiredBatch:
    last_member: str | None
    members: int
    entries: int
    points: int


async def try_lock(connection: asyncpg.Connection) -> bool:
    """The coalition's expiry lock for this session; False when another run holds it."""
    return bool(await connection.fetchval("SELECT pg_try_advisory_lock(expiry_lock_class(), 0)"))


async def unlock(connection: asyncpg.Connection) -> None:
    await connection.execute("SELECT pg_advisory_unlock(expiry_lock_class(), 0)")


async def expire_batch(
    connection: asyncpg.Connection, after: str, limit: int, zone: str
) -> ExpiredBatch:
    """Expire what is due of the next ``limit`` members after ``after``, in one transaction."""
    row = await connection.fetchrow(
        "SELECT batch_last, batch_members, batch_entries, batch_points"
        " FROM expiry_run_batch($1, $2, $3)",
        after,
        limit,
        zone,
    )
    assert row is not None
    return ExpiredBatch(
        row["batch_last"], row["batch_members"], row["batch_entries"], row["batch_points"]
    )


_EXPIRING = """
WITH free AS (
    SELECT l.expires_at, l.remaining, b.held_points,
           sum(l.remaining) OVER (ORDER BY l.expires_at, l.recorded_at, l.entry_id, l.lot_id)
               - l.remaining AS before
      FROM lots l JOIN member_balances b ON b.member_id = l.member_id
     WHERE l.member_id = $1 AND l.remaining > 0 AND l.expires_at IS NOT NULL
)
SELECT f.expires_at,
       sum(f.remaining - greatest(0, least(f.remaining, f.held_points - f.before)))::bigint
           AS points
  FROM free f
 WHERE f.before + f.remaining > f.held_points AND f.expires_at > $2 AND f.expires_at <= $3
 GROUP BY f.expires_at ORDER BY f.expires_at
"""


async def member_expiring(
    connection: asyncpg.Connection, member_id: str, now: datetime, until: datetime
) -> list[ExpiringPoints]:
    """The member's points that expire after ``now`` and by ``until`` unless redeemed, per
    expiry instant; points its open holds reserve are not among them."""
    rows = await connection.fetch(_EXPIRING, member_id, now, until)
    return [ExpiringPoints(r["expires_at"], r["points"]) for r in rows]
