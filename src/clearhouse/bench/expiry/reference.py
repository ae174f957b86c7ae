"""The reference the product's expiry run is held against: the one statement a person would write
to expire every due lot at once, with none of the product's functions."""

from __future__ import annotations

from typing import Final

from clearhouse.bench.servers import BenchError
from clearhouse.services.database import Database

RAW_EXPIRY: Final = """
WITH clock AS (
    SELECT clock_timestamp() + offset_interval AS now FROM ledger_clock
), due AS (
    SELECT l.lot_id, l.member_id, l.remaining
      FROM lots l CROSS JOIN clock c
     WHERE l.remaining > 0 AND l.expires_at <= c.now
), per_member AS (
    SELECT d.member_id, sum(d.remaining)::bigint AS points, gen_random_uuid() AS entry_id
      FROM due d GROUP BY d.member_id
), balances AS (
    UPDATE member_balances b SET balance_points = b.balance_points - p.points
      FROM per_member p WHERE b.member_id = p.member_id
    RETURNING b.member_id, b.balance_points
), recorded AS (
    INSERT INTO entries (entry_id, kind, member_id, points, member_balance_after, recorded_at)
    SELECT p.entry_id, 'expiry', p.member_id, p.points, b.balance_points, c.now
      FROM per_member p JOIN balances b ON b.member_id = p.member_id CROSS JOIN clock c
), posted AS (
    INSERT INTO postings (entry_id, seq, account, asset, amount)
    SELECT p.entry_id, s.seq,
           CASE s.seq WHEN 1 THEN 'member:' || p.member_id ELSE 'coalition:breakage' END,
           'PTS', CASE s.seq WHEN 1 THEN -p.points ELSE p.points END
      FROM per_member p CROSS JOIN (VALUES (1::smallint), (2::smallint)) AS s(seq)
), used AS (
    UPDATE lots l SET remaining = 0 FROM due d WHERE l.lot_id = d.lot_id
), linked AS (
    INSERT INTO lot_consumptions (entry_id, lot_id, points)
    SELECT p.entry_id, d.lot_id, d.remaining FROM due d JOIN per_member p USING (member_id)
)
SELECT count(*) AS members FROM per_member
"""
"""What an expiry entry writes, as ``expiry_run_batch`` writes it (the balance decremented, one
``expiry`` entry per member with its two postings member -> coalition:breakage, every due lot at
0 and its consumption), for every member at once: no batches, no member lock taken beforehand,
no holds to leave reserved (the bench has none), no period check. The ledger's triggers stay on
(the outbox's ``entry.recorded`` event per entry, the deferred balance and lot checks at
commit), as for the product. The clock is read from ``ledger_clock`` as ``ledger_now`` reads it.
"""


async def raw_expiry(database: Database) -> int:
    """Run the reference in one transaction; the members it expired."""
    async with database.transaction() as connection:
        members = await connection.fetchval(RAW_EXPIRY)
    if not members:
        raise BenchError("the raw expiry statement found no lots past their time")
    return int(members)
