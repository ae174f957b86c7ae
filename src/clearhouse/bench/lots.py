"""Members' lots loaded in bulk: issue entries, their postings, their lots and the balances, set
by set in the caller's transaction, so that every rule the database checks at commit holds.

A lot is what an issue leaves a member (the migration ``2026_12_02_0004_lots`` says how lots are
taken and expired); the expiry benchmark loads a million of them to expire, the ledger benchmark
members with one lot or many to redeem from. Lot ``i``
of ``lots`` belongs to member ``i mod members`` and is recorded ``i`` steps after ``recorded_from``;
each is one issue entry (partner -> member, two postings, as the posting rules write them) and
one lot of the same points, expiring ``expires_after`` after it was recorded (never when None).
The members' balances grow by their lots' points, and each entry's ``member_balance_after`` is
the running balance, so the ledger's invariants and the deferred lot triggers (a member's lots
add up to its balance; a lot's remainder is its points less its consumptions) hold at commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

_DRAW: Final = """
CREATE TEMP TABLE bench_lots ON COMMIT DROP AS
SELECT g.i,
       $1::text || lpad(((g.i % $2) + 1)::text, $3, '0') AS member_id,
       md5($4::text || g.i)::uuid AS entry_id,
       coalesce($5::bigint, 1 + (hashint8extended(g.i, 7) & 2147483647) % 100) AS points,
       $6::timestamptz + g.i * $7::interval AS recorded_at
  FROM generate_series(0::bigint, $8::bigint - 1) AS g(i)
"""
"""$1 member prefix, $2 members, $3 width of member numbers, $4 entry id seed, $5 points per lot
(NULL: 1 to 100 drawn per lot), $6 the first lot's time, $7 the step between lots, $8 lots."""

_ENTRIES: Final = """
INSERT INTO entries (entry_id, kind, partner_id, member_id, points, member_balance_after,
                     contract_version, occurred_at, recorded_at, reference)
SELECT l.entry_id, 'issue', $1, l.member_id, l.points,
       b.balance_points + sum(l.points) OVER (PARTITION BY l.member_id ORDER BY l.i),
       $2, l.recorded_at, l.recorded_at, 'bench lot ' || l.i
  FROM bench_lots l JOIN member_balances b ON b.member_id = l.member_id
 ORDER BY l.i
"""

_POSTINGS: Final = """
INSERT INTO postings (entry_id, seq, account, asset, amount)
SELECT l.entry_id, s.seq,
       CASE s.seq WHEN 1 THEN 'partner:' || $1 || ':issued' ELSE 'member:' || l.member_id END,
       'PTS', CASE s.seq WHEN 1 THEN -l.points ELSE l.points END
  FROM bench_lots l CROSS JOIN (VALUES (1::smallint), (2::smallint)) AS s(seq)
 ORDER BY l.i, s.seq
"""

_LOTS: Final = """
INSERT INTO lots (member_id, entry_id, partner_id, contract_version, points, remaining,
                  recorded_at, cohort_at, expires_at)
SELECT l.member_id, l.entry_id, $1, $2, l.points, l.points, l.recorded_at, l.recorded_at,
       l.recorded_at + $3::interval
  FROM bench_lots l
 ORDER BY l.i
"""

_BALANCES: Final = """
UPDATE member_balances b SET balance_points = b.balance_points + s.points
  FROM (SELECT member_id, sum(points) AS points FROM bench_lots GROUP BY member_id) AS s
 WHERE b.member_id = s.member_id
"""


@dataclass(frozen=True, slots=True)
class LotMembers:
    """``count`` members named ``prefix`` and a zero-padded number from 1."""

    prefix: str
    count: int

    @property
    def width(self) -> int:
        return max(6, len(str(self.count)))

    def ids(self) -> list[str]:
        return [f"{self.prefix}{n:0{self.width}d}" for n in range(1, self.count + 1)]


@dataclass(frozen=True, slots=True)
class IssuedLots:
    """What ``issue_lots`` loaded: its lots (one issue entry each) and their points."""

    lots: int
    points: int


async def issue_lots(
    connection: Any,
    members: LotMembers,
    *,
    lots: int,
    partner_id: str,
    contract_version: int,
    recorded_from: datetime,
    step: timedelta,
    points_per_lot: int | None = None,
    expires_after: timedelta | None = None,
) -> IssuedLots:
    """``lots`` issues by ``partner_id`` spread over ``members`` (enrolled beforehand), each one
    lot, in the caller's transaction; ``points_per_lot`` None draws 1 to 100 points per lot."""
    await connection.execute(
        _DRAW,
        members.prefix,
        members.count,
        members.width,
        f"clearhouse-bench-lot:{members.prefix}:",
        points_per_lot,
        recorded_from,
        step,
        lots,
    )
    await connection.execute("ANALYZE bench_lots")
    await connection.execute(_ENTRIES, partner_id, contract_version)
    await connection.execute(_POSTINGS, partner_id)
    await connection.execute(_LOTS, partner_id, contract_version, expires_after)
    await connection.execute(_BALANCES)
    points = int(await connection.fetchval("SELECT coalesce(sum(points), 0) FROM bench_lots"))
    await connection.execute("DROP TABLE bench_lots")
    return IssuedLots(lots, points)
