"""The month a clearing benchmark settles: its partners' contracts, its members, and N entries
loaded in bulk with set-based SQL in one transaction, the ledger's triggers on."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from clearhouse.domain.periods import period_bounds
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import load_contracts
from clearhouse.services.database import Database
from clearhouse.storage import ledger as ledger_store
from clearhouse.storage.migrate import upgrade

BENCH_DATABASE: Final = "clearhouse_bench_clearing"
TRACED_DATABASE: Final = "clearhouse_bench_clearing_traced"
PERIOD: Final = "2030-01"
ZONE: Final = ZoneInfo("Europe/Berlin")
SECOND_VERSION_FROM: Final = datetime(2030, 1, 16, tzinfo=ZONE)
"""Partner 1's contract version 2 is in force from here (mid-month)."""
DEFAULT_OUT: Final = Path("reports") / "bench-clearing.json"

_CONTRACT: Final = """
partner_id = "{partner_id}"
version = {version}
effective_from = "{effective_from}"
legal_name = "Bench partner {number} GmbH"
currency = "EUR"

[settlement]
issue_rate = "{issue_rate}"
redemption_rate = "{redemption_rate}"
fee_per_entry = "{fee_per_entry}"

[limits]
max_points_per_transaction = 1000
max_points_per_member_per_day = 100000

[purposes.accrual]
legal_basis = "contract"
fields = ["member.balance"]

[purposes.redemption]
legal_basis = "contract"
fields = ["member.balance"]

[purposes.settlement]
legal_basis = "legal_obligation"
fields = ["transactions.own"]
"""

# The month's draws, one row per entry i: member i mod M, the i-th instant of the month, and
# the position of the entry among its member's entries in rounds of three (slot 0, 1, 2).
# Slot 0 is an issue of 40..100 points; slot 1 a redeem of 1..30 (60 %) or an issue of 1..100;
# slot 2 a reversal (30 %: of the slot-1 redeem when there is one, half of those times, else of
# the slot-0 issue), a redeem of 1..10 (40 %) or an issue of 1..100. Within each round the
# running balance stays >= its value before the round: 40 - 30 - 10 >= 0 and 3/4 x 40 - 30 >= 0.
# $1 entries, $2 members, $3 partners, $4 the month's start, $5 microseconds between entries.
_DRAW: Final = """
CREATE TEMP TABLE bench_draw ON COMMIT DROP AS
SELECT i, member_no, partner_no, recorded_at, h_points,
       CASE slot
         WHEN 0 THEN 'issue'
         WHEN 1 THEN CASE WHEN u_kind < 0.6 THEN 'redeem' ELSE 'issue' END
         ELSE CASE WHEN u_kind < 0.3 THEN 'reversal' WHEN u_kind < 0.7 THEN 'redeem'
                   ELSE 'issue' END
       END AS kind,
       CASE slot
         WHEN 0 THEN 40 + h_points % 61
         WHEN 1 THEN CASE WHEN u_kind < 0.6 THEN 1 + h_points % 30 ELSE 1 + h_points % 100 END
         ELSE CASE WHEN u_kind < 0.3 THEN 0 WHEN u_kind < 0.7 THEN 1 + h_points % 10
                   ELSE 1 + h_points % 100 END
       END AS points,
       CASE WHEN slot = 2 AND u_kind < 0.3 THEN
            CASE WHEN u_kind < 0.15 AND u_previous < 0.6 THEN i - $2 ELSE i - 2 * $2 END
       END AS target
  FROM (
    SELECT g.i,
           g.i % $2 AS member_no,
           (g.i / $2) % 3 AS slot,
           $4::timestamptz + (g.i * $5 + $5 / 2) * interval '1 microsecond' AS recorded_at,
           (hashint8extended(g.i, 1) & 2147483647) % $3 AS partner_no,
           (hashint8extended(g.i, 2) & 2147483647)::float8 / 2147483648 AS u_kind,
           (hashint8extended(g.i - $2, 2) & 2147483647)::float8 / 2147483648 AS u_previous,
           hashint8extended(g.i, 3) & 2147483647 AS h_points
      FROM generate_series(0::bigint, $1::bigint - 1) AS g(i)
  ) AS d
"""

# Each entry as recorded: a reversal takes its partner and contract version from the entry it
# reverses and moves ceil(half) of a redeem or a quarter of an issue back; ``moved`` is the kind
# whose direction its points go (issue: partner -> member; redeem: member -> partner).
# $1 the moment contract version 2 of partner 1 takes effect.
_PLAN: Final = """
CREATE TEMP TABLE bench_plan ON COMMIT DROP AS
SELECT x.*,
       sum(x.member_delta) OVER (PARTITION BY x.member_no ORDER BY x.i) AS balance_after
  FROM (
    SELECT y.*,
           CASE WHEN y.moved = 'issue' THEN y.sign * y.points ELSE -y.sign * y.points END
               AS member_delta
      FROM (
        SELECT d.i, d.member_no, d.recorded_at, d.kind, d.h_points,
               md5('clearhouse-bench:' || d.i)::uuid AS entry_id,
               md5('clearhouse-bench:' || t.i)::uuid AS reversal_of,
               coalesce(t.partner_no, d.partner_no) AS partner_no,
               coalesce(t.kind, d.kind) AS moved,
               CASE WHEN d.kind = 'reversal' THEN -1 ELSE 1 END AS sign,
               CASE WHEN t.i IS NULL THEN d.points
                    WHEN t.kind = 'redeem' THEN (t.points + 1) / 2
                    ELSE t.points / 4 END AS points,
               CASE WHEN coalesce(t.partner_no, d.partner_no) = 0
                         AND coalesce(t.recorded_at, d.recorded_at) >= $1 THEN 2 ELSE 1 END
                   AS contract_version
          FROM bench_draw d
          LEFT JOIN bench_draw t ON t.i = d.target
      ) AS y
  ) AS x
"""

# What a partner's signed API call leaves on its entry (RFC 9421 and RFC 9530 headers), in the
# shape and length the partner client sends. $1 the width of member numbers.
_ENTRIES: Final = """
INSERT INTO entries (entry_id, kind, partner_id, member_id, points, member_balance_after,
                     contract_version, occurred_at, recorded_at, reference, reversal_of,
                     idempotency_key, signature_input, signature, content_digest)
SELECT p.entry_id, p.kind,
       'bench-partner-' || (p.partner_no + 1),
       'bench-member-' || lpad((p.member_no + 1)::text, $1, '0'),
       p.points, p.balance_after, p.contract_version,
       p.recorded_at - (p.h_points % 600) * interval '1 second',
       p.recorded_at,
       CASE WHEN p.kind = 'reversal' THEN 'return of goods'
            ELSE 'receipt ' || lpad(to_hex(p.h_points), 8, '0') END,
       p.reversal_of,
       'bench-' || p.i,
       'sig1=("@method" "@target-uri" "content-type" "content-digest" "idempotency-key");'
           || 'created=' || extract(epoch FROM p.recorded_at)::bigint
           || ';keyid="bench-partner-' || (p.partner_no + 1) || '-k1";nonce="'
           || rtrim(translate(encode(substr(sha256(int8send(p.i)), 1, 18), 'base64'),
                              '+/', '-_'), '=')
           || '";alg="ed25519"',
       'sig1=:' || replace(encode(sha512(int8send(p.i)), 'base64'), E'\\n', '') || ':',
       'sha-256=:' || encode(sha256(int8send(-p.i - 1)), 'base64') || ':'
  FROM bench_plan p
 ORDER BY p.i
"""

# Two postings per entry in the order the posting rules write them (debit first), mirrored for
# a reversal. $1 the width of member numbers.
_POSTINGS: Final = """
INSERT INTO postings (entry_id, seq, account, asset, amount)
SELECT p.entry_id, s.seq,
       CASE WHEN (s.seq = 1) = (p.moved = 'issue')
            THEN 'partner:bench-partner-' || (p.partner_no + 1)
                 || CASE WHEN p.moved = 'issue' THEN ':issued' ELSE ':redeemed' END
            ELSE 'member:bench-member-' || lpad((p.member_no + 1)::text, $1, '0') END,
       'PTS',
       CASE WHEN s.seq = 1 THEN -1 ELSE 1 END * p.sign * p.points
  FROM bench_plan p
 CROSS JOIN (VALUES (1::smallint), (2::smallint)) AS s(seq)
 ORDER BY p.i, s.seq
"""

_IDEMPOTENCY_KEYS: Final = """
INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, entry_id, created_at,
                              member_id)
SELECT partner_id, idempotency_key, sha256(convert_to(idempotency_key, 'UTF8')), entry_id,
       recorded_at, member_id
  FROM entries WHERE recorded_at >= $1 AND recorded_at < $2
"""

_BALANCES: Final = """
UPDATE member_balances b SET balance_points = s.total
  FROM (SELECT 'bench-member-' || lpad((member_no + 1)::text, $1, '0') AS member_id,
               sum(member_delta) AS total
          FROM bench_plan GROUP BY member_no) AS s
 WHERE b.member_id = s.member_id
"""


# Each member's points as one lot that never expires: the lots hold the balance, as the ledger
# requires at commit; expiry is not what this benchmark measures.
_LOTS: Final = """
INSERT INTO lots (member_id, points, remaining, recorded_at, cohort_at)
SELECT member_id, balance_points, balance_points, ledger_now(), ledger_now()
  FROM member_balances WHERE balance_points > 0
"""


@dataclass(frozen=True, slots=True)
class LoadFigures:
    seconds: float
    entries: int
    postings: int
    by_kind: dict[str, int]
    partners: list[dict[str, object]]
    database_bytes: int
    invariant_violations: list[str]
    vacuum_analyze_s: float


def contract_files(partner_ids: Sequence[str]) -> list[tuple[str, bytes]]:
    """Version 1 for every partner (in force since 2000), version 2 for the first from mid-month.

    Rates differ per partner; the second partner pays a fee per entry.
    """
    files = []
    for number, partner_id in enumerate(partner_ids, 1):
        terms = {
            "partner_id": partner_id,
            "number": number,
            "version": 1,
            "effective_from": "2000-01-01T00:00:00Z",
            "issue_rate": f"{0.0100 + 0.0005 * (number - 1):.4f}",
            "redemption_rate": f"{0.0080 + 0.0003 * (number - 1):.4f}",
            "fee_per_entry": "0.0005" if number == 2 else "0",
        }
        files.append((f"{partner_id}.v1.toml", _CONTRACT.format(**terms).encode()))
        if number == 1:
            terms |= {
                "version": 2,
                "effective_from": SECOND_VERSION_FROM.isoformat(),
                "issue_rate": "0.011250",
                "redemption_rate": "0.008125",
            }
            files.append((f"{partner_id}.v2.toml", _CONTRACT.format(**terms).encode()))
    return files


async def prepare(
    database: Database,
    *,
    entries: int,
    members: int,
    partners: int,
    progress: Callable[[str], None],
) -> LoadFigures:
    """Migrate, contracts, members, then the month in bulk; the clock past the month's end."""
    start, end = period_bounds(PERIOD, ZONE)
    progress("migrating; contracts through load_contracts; members through enrol_members")
    await upgrade(database.engine)
    await set_ledger_time(database, sandbox=True, at=start + timedelta(hours=1))
    partner_ids = [f"bench-partner-{n}" for n in range(1, partners + 1)]
    await load_contracts(database, contract_files(partner_ids))
    width = max(6, len(str(members)))
    await enrol_members(database, [f"bench-member-{n:0{width}d}" for n in range(1, members + 1)])

    step_us = int((end - start).total_seconds() * 1_000_000) // entries
    progress(f"loading {entries:,} entries in bulk, in one transaction (triggers on)")
    began = time.perf_counter()
    async with database.transaction() as connection:
        await connection.execute("SET LOCAL work_mem = '256MB'")
        await connection.execute(_DRAW, entries, members, partners, start, step_us)
        await connection.execute("ANALYZE bench_draw")
        await connection.execute(_PLAN, SECOND_VERSION_FROM)
        progress("... entries")
        await connection.execute(_ENTRIES, width)
        progress("... postings")
        await connection.execute(_POSTINGS, width)
        progress("... idempotency keys, member balances; then commit (the deferred triggers)")
        await connection.execute(_IDEMPOTENCY_KEYS, start, end)
        await connection.execute(_BALANCES, width)
        await connection.execute(_LOTS)
    seconds = time.perf_counter() - began

    progress("VACUUM ANALYZE; checking the ledger's invariants")
    began = time.perf_counter()
    async with database.driver_connection() as connection:
        await connection.execute(
            "VACUUM (ANALYZE) entries, postings, idempotency_keys, member_balances, accounts"
        )
        vacuum_s = time.perf_counter() - began
        violations = await ledger_store.invariant_violations(connection)
        kinds = await connection.fetch("SELECT kind, count(*) AS n FROM entries GROUP BY kind")
        postings = int(await connection.fetchval("SELECT count(*) FROM postings"))
        per_partner = await connection.fetch(
            """
            SELECT partner_id, contract_version, count(*) AS n FROM entries
             GROUP BY 1, 2 ORDER BY 1, 2
            """
        )
        size = int(await connection.fetchval("SELECT pg_database_size(current_database())"))
    await set_ledger_time(database, sandbox=True, at=end + timedelta(seconds=5))
    by_kind = {r["kind"]: int(r["n"]) for r in kinds}
    return LoadFigures(
        seconds=seconds,
        entries=sum(by_kind.values()),
        postings=postings,
        by_kind=by_kind,
        partners=[
            {
                "partner_id": r["partner_id"],
                "contract_version": r["contract_version"],
                "entries": r["n"],
            }
            for r in per_partner
        ],
        database_bytes=size,
        invariant_violations=violations,
        vacuum_analyze_s=vacuum_s,
    )
