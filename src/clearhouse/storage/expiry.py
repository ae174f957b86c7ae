"""The expiry run's statements: its lock, one batch of members at a time, members' expiring
points, and the reminders before expiry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from clearhouse.domain.expiry import ExpiringPoints
from clearhouse.domain.purposes import ConsentRecord, Purpose


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


def _expiring(members: str) -> str:
    """Unreserved points per member and expiry instant after ``$1`` and by ``$2``, of the
    members that ``members`` (a query of ``member_id``) chooses: a lot's points count only past
    what the member's open holds reserve, and holds reserve the earliest-expiring lots first."""
    return f"""
WITH chosen AS ({members}),
free AS (
    SELECT l.member_id, l.expires_at, l.remaining, b.held_points,
           sum(l.remaining) OVER (PARTITION BY l.member_id
                                  ORDER BY l.expires_at, l.recorded_at, l.entry_id, l.lot_id)
               - l.remaining AS before
      FROM chosen c
      JOIN lots l ON l.member_id = c.member_id
      JOIN member_balances b ON b.member_id = l.member_id
     WHERE l.remaining > 0 AND l.expires_at IS NOT NULL
)
SELECT f.member_id, f.expires_at,
       sum(f.remaining - greatest(0, least(f.remaining, f.held_points - f.before)))::bigint
           AS points
  FROM free f
 WHERE f.before + f.remaining > f.held_points AND f.expires_at > $1 AND f.expires_at <= $2
 GROUP BY f.member_id, f.expires_at ORDER BY f.member_id, f.expires_at
"""


_MEMBER_EXPIRING = _expiring("SELECT $3::text AS member_id")


async def member_expiring(
    connection: asyncpg.Connection, member_id: str, now: datetime, until: datetime
) -> list[ExpiringPoints]:
    """The member's points that expire after ``now`` and by ``until`` unless redeemed, per
    expiry instant; points its open holds reserve are not among them."""
    rows = await connection.fetch(_MEMBER_EXPIRING, now, until, member_id)
    return [ExpiringPoints(r["expires_at"], r["points"]) for r in rows]


@dataclass(frozen=True, slots=True)
class MemberExpiring:
    """A member (not erased) with points expiring soon, the partners related to them and their
    consent history: what deciding the member's reminders needs."""

    member_id: str
    expiring: list[ExpiringPoints]
    partners: list[str]
    consents: list[ConsentRecord]


_DUE_MEMBERS = _expiring(
    """SELECT DISTINCT l.member_id FROM lots l JOIN members m ON m.member_id = l.member_id
        WHERE l.member_id > $3 AND l.remaining > 0 AND l.expires_at > $1 AND l.expires_at <= $2
          AND m.erased_at IS NULL
        ORDER BY l.member_id LIMIT $4"""
)

_RELATED = """
SELECT c.member_id,
       ARRAY(SELECT m.enrolled_by FROM members m WHERE m.member_id = c.member_id
             UNION SELECT k.partner_id FROM member_links k WHERE k.member_id = c.member_id
             UNION SELECT DISTINCT e.partner_id FROM entries e
                    WHERE e.member_id = c.member_id AND e.partner_id IS NOT NULL
             UNION SELECT g.partner_id FROM consents g
                    WHERE g.member_id = c.member_id AND g.granted AND g.partner_id <> '*'
             ORDER BY 1) AS partners,
       ARRAY(SELECT ROW(s.partner_id, s.purpose, s.granted, s.recorded_at)
               FROM consents s WHERE s.member_id = c.member_id
              ORDER BY s.recorded_at, s.consent_id) AS consents
  FROM unnest($1::text[]) AS c(member_id)
"""


async def members_expiring(
    connection: asyncpg.Connection, now: datetime, until: datetime, after: str, limit: int
) -> list[MemberExpiring]:
    """The next ``limit`` members after ``after`` (by id) with points expiring after ``now``
    and by ``until``, with their related partners and consents."""
    rows = await connection.fetch(_DUE_MEMBERS, now, until, after, limit)
    expiring: dict[str, list[ExpiringPoints]] = {}
    for r in rows:
        expiring.setdefault(r["member_id"], []).append(ExpiringPoints(r["expires_at"], r["points"]))
    related = await connection.fetch(_RELATED, list(expiring))
    return [
        MemberExpiring(
            r["member_id"],
            expiring[r["member_id"]],
            [p for p in r["partners"] if p is not None],
            [ConsentRecord(p, Purpose(u), g, t) for p, u, g, t in r["consents"]],
        )
        for r in related
    ]


@dataclass(frozen=True, slots=True)
class Reminder:
    """One ``points.expiring`` event for one partner, and the disclosure it is."""

    partner_id: str
    member_id: str
    day: date
    """The day of expiry in the coalition's time zone: with the offset, what makes it once."""
    expires_at: datetime
    points: int
    days_before: int
    contract_version: int
    legal_basis: str


_RECORD_REMINDERS = """
WITH sent AS (
    SELECT r.partner_id, r.member_id, r.contract_version, r.legal_basis,
           outbox_record(
               'points.expiring', r.partner_id, ledger_now(),
               jsonb_build_object('member_id', r.member_id, 'points', r.points,
                                  'expires_at', r.expires_at, 'days_before', r.days_before),
               format('points.expiring:%s:%s:%s:%s', r.partner_id, r.member_id, r.day,
                      r.days_before)) AS event_id
      FROM unnest($1::text[], $2::text[], $3::date[], $4::timestamptz[], $5::bigint[],
                  $6::integer[], $7::integer[], $8::text[])
           AS r(partner_id, member_id, day, expires_at, points, days_before, contract_version,
                legal_basis)
),
logged AS (
    INSERT INTO disclosures
        (partner_id, member_id, purpose, fields, contract_version, legal_basis, request_id)
    SELECT s.partner_id, s.member_id, 'customer_service', ARRAY['member.balance'],
           s.contract_version, s.legal_basis, s.event_id
      FROM sent s WHERE s.event_id IS NOT NULL
    RETURNING 1
)
SELECT count(*) FROM logged
"""


async def record_reminders(connection: asyncpg.Connection, reminders: Sequence[Reminder]) -> int:
    """Record each reminder once (a repeat of its partner, member, day of expiry and offset is
    skipped) as an event in the outbox and, with it, a disclosure of ``member.balance`` for
    ``customer_service`` whose request id is the event's id. Returns how many were new."""
    if not reminders:
        return 0
    count = await connection.fetchval(
        _RECORD_REMINDERS,
        [r.partner_id for r in reminders],
        [r.member_id for r in reminders],
        [r.day for r in reminders],
        [r.expires_at for r in reminders],
        [r.points for r in reminders],
        [r.days_before for r in reminders],
        [r.contract_version for r in reminders],
        [r.legal_basis for r in reminders],
    )
    return int(count)
