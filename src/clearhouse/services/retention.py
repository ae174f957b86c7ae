"""Retention: entry metadata is kept only as long as the partner's contract says.

The metadata a partner sends with an entry is kept apart from the (append-only) entry; its
retention is the ``retention_days`` of the purpose it came with, in the contract version the
entry was recorded under. One set-based DELETE removes what is past it; entries, postings and
ledger roots are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearhouse.services.database import Database


@dataclass(frozen=True, slots=True)
class RetentionRemoval:
    partner_id: str
    purpose: str
    retention_days: int
    removed: int


async def run_retention(database: Database) -> list[RetentionRemoval]:
    """Remove entry metadata past its retention, at the ledger clock; report what went."""
    async with database.transaction() as connection:
        rows = await connection.fetch(
            """
            WITH expired AS (
                DELETE FROM entry_metadata m
                 USING entries e, contract_versions c
                 WHERE e.entry_id = m.entry_id
                   AND c.partner_id = e.partner_id AND c.version = e.contract_version
                   AND (c.purposes -> m.purpose ->> 'retention_days') IS NOT NULL
                   AND m.recorded_at + make_interval(
                           days => (c.purposes -> m.purpose ->> 'retention_days')::int)
                       <= ledger_now()
                RETURNING e.partner_id, m.purpose,
                          (c.purposes -> m.purpose ->> 'retention_days')::int AS days
            )
            SELECT partner_id, purpose, days, count(*) AS removed
              FROM expired GROUP BY partner_id, purpose, days ORDER BY partner_id, purpose
            """
        )
    return [
        RetentionRemoval(r["partner_id"], r["purpose"], r["days"], int(r["removed"])) for r in rows
    ]
