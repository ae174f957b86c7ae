"""``clearhouse bench clearing``: a month of N entries closed, netted, settled and written out.

In one run, on one server, in a database of its own (``clearhouse_bench_clearing``):

1. **Load.** Migrate, load the partners' contracts through ``load_contracts`` (partner 1 has a
   second version in force from the middle of the month), enrol the members through
   ``enrol_members`` (members, their balance rows and accounts), then load the month in bulk with
   set-based SQL in ONE transaction: entries, their two balanced postings each, an idempotency key
   each, and every member's balance set to the sum of its postings. The ledger's triggers stay on:
   the deferred "each entry balances" triggers and the foreign keys run at commit. The mix, per
   member in rounds of three of its entries: an issue; a redeem (60 %) or an issue; then a partial
   reversal of one of the two (30 %), a redeem (40 %) or an issue. Redeems and reversals are sized
   so that no running balance ever goes below zero. Then VACUUM ANALYZE (what autovacuum does to a
   month of inserts) and the sandbox ledger clock is set past the month's end.
2. **Timed pass.** ``Clearing.close`` (the ledger root over the N canonical entries),
   ``Clearing.settle`` (netting, the settlement entries, the signed statements), and
   ``Clearing.write_workbook`` for every statement (each partner's and the coalition's) into a
   temporary folder, each timed on its own. Beside them, on the same server and in the same
   process: the netting's aggregate part alone (``partner_aggregates`` and ``points_roll_forward``,
   then the pure netting and checks: what ``settle`` does before it writes) alternating with the
   raw SQL ``GROUP BY`` a person would write over the same postings (per partner and kind, the
   points of the period), medians of ``--repeats`` runs each; and after each workbook a bare
   openpyxl write-only loop appending as many rows of the same ten columns (plain values of the
   same kinds and lengths, no formats, no cell objects) into a workbook of its own. Alternating
   the figures that are compared lets a drift of a shared machine bear on both alike.
3. **Traced pass** (unless ``--no-tracemalloc``): close, settle and the workbooks again, on a
   byte-identical copy of the loaded database made before the timed pass, each step under
   ``tracemalloc``, for the peak of the Python heap. tracemalloc slows the workbooks down about
   seven times, so this pass gives the heap figures only and the timed pass the seconds; the
   references are not traced (their memory is no goal).

Per step, besides seconds and rows/s: CPU seconds of this process (all threads) and of the
bench database's PostgreSQL backends (read from ``/proc``, 0 when PostgreSQL is not local), the
peak resident set of this process sampled every 10 ms from ``/proc/self/statm``, and
``ru_maxrss`` after the step, which is the high-water mark of the whole process so far (it never
goes down, so a step's figure may be an earlier step's peak). The memory goal is held against
``ru_maxrss`` at the end of the timed pass: the whole process, load included. PostgreSQL's own
memory is in none of these figures.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import random
import resource
import tempfile
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import openpyxl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openpyxl import Workbook

from clearhouse.bench.cpu import process_cpu_s
from clearhouse.bench.report import headline, machine_facts, ratio, timestamp, write_json
from clearhouse.bench.servers import (
    BenchError,
    Server,
    checkpoint,
    drop_database,
    recreate_database,
    server_facts,
)
from clearhouse.config import Settings
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.netting import check_settlement, coalition_margin, net_partner
from clearhouse.domain.periods import period_bounds
from clearhouse.services.clearing import Clearing, Settlement
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import load_contracts
from clearhouse.services.database import Database
from clearhouse.statements.documents import COALITION_PARTY
from clearhouse.statements.workbook import ENTRY_COLUMNS, EXCEL_MAX_ROWS, entries_sheet_title
from clearhouse.storage import clearing as clearing_store
from clearhouse.storage import contracts as contract_store
from clearhouse.storage import ledger as ledger_store
from clearhouse.storage.clearing import PeriodRow
from clearhouse.storage.migrate import upgrade

__all__ = [
    "ClearingBenchReport",
    "render",
    "run_clearing_bench",
    "write_report",
]

BENCH_DATABASE: Final = "clearhouse_bench_clearing"
TRACED_DATABASE: Final = "clearhouse_bench_clearing_traced"
PERIOD: Final = "2030-01"
ZONE: Final = ZoneInfo("Europe/Berlin")
SECOND_VERSION_FROM: Final = datetime(2030, 1, 16, tzinfo=ZONE)
"""Partner 1's contract version 2 is in force from here (mid-month)."""
DEFAULT_OUT: Final = Path("reports") / "bench-clearing.json"

GOAL_NETTING_OVER_GROUP_BY: Final = 1.5
GOAL_WORKBOOKS_OVER_BARE: Final = 1.3
GOAL_PEAK_MIB: Final = 300.0
RSS_SAMPLE_S: Final = 0.01
MIB: Final = 1024 * 1024

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

RAW_GROUP_BY: Final = """
SELECT e.partner_id, e.kind, sum(p.amount) AS points, count(*) AS postings
  FROM postings p
  JOIN entries e ON e.entry_id = p.entry_id
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
   AND p.asset = 'PTS' AND p.account LIKE 'partner:%'
 GROUP BY e.partner_id, e.kind
"""
"""The reference: per partner and kind, the points of the period, over the postings."""


# -- measuring ----------------------------------------------------------------------------------


def _rss_bytes() -> int:
    """This process's resident set now (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _maxrss_bytes() -> int:
    """``ru_maxrss``: the process's high-water mark so far (KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value) if platform.system() == "Darwin" else int(value) * 1024


class _RssSampler:
    """The highest resident set seen while it runs, sampled by a thread of its own."""

    def __init__(self, interval_s: float = RSS_SAMPLE_S) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _RssSampler:
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


@dataclass(slots=True)
class Measured:
    """One step: its seconds, CPU seconds by whom, and what memory it took (bytes)."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    """CPU of this process (all its threads: the workbooks are zipped in a worker thread)."""
    postgres_cpu_s: float = 0.0
    """CPU of the PostgreSQL backends connected to the bench database (0 if not local)."""
    rss_before: int = 0
    rss_peak: int = 0
    maxrss_after: int = 0
    heap_peak: int | None = None
    """tracemalloc's peak of what the step allocated and kept at once (traced pass only)."""

    @classmethod
    def combined(cls, parts: Sequence[Measured]) -> Measured:
        """Parts of one step measured apart (one workbook each): times add, peaks are maxima."""
        heaps = [p.heap_peak for p in parts if p.heap_peak is not None]
        return cls(
            seconds=sum(p.seconds for p in parts),
            cpu_s=sum(p.cpu_s for p in parts),
            postgres_cpu_s=sum(p.postgres_cpu_s for p in parts),
            rss_before=parts[0].rss_before,
            rss_peak=max(p.rss_peak for p in parts),
            maxrss_after=max(p.maxrss_after for p in parts),
            heap_peak=max(heaps) if heaps else None,
        )


async def _backend_cpu(database: Database) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the bench database."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    return {int(r["pid"]): process_cpu_s(int(r["pid"])) for r in rows}


@contextlib.asynccontextmanager
async def measuring(database: Database, traced: bool) -> AsyncIterator[Measured]:
    """Time the block, its CPU here and in PostgreSQL; sample its resident set; under
    tracemalloc when ``traced``."""
    gc.collect()
    backends = await _backend_cpu(database)
    figures = Measured(rss_before=_rss_bytes())
    cpu = time.process_time()
    with _RssSampler() as sampler:
        if traced:
            tracemalloc.start()
        start = time.perf_counter()
        try:
            yield figures
        finally:
            figures.seconds = time.perf_counter() - start
            if traced:
                figures.heap_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
    figures.cpu_s = time.process_time() - cpu
    figures.rss_peak = sampler.peak
    figures.maxrss_after = _maxrss_bytes()
    # A backend that connected in between spent all its CPU in between.
    after = await _backend_cpu(database)
    figures.postgres_cpu_s = sum(s - backends.get(pid, 0.0) for pid, s in after.items())


def _median(runs: Sequence[Measured]) -> Measured:
    """The run of median seconds (the lower middle one of an even number)."""
    ordered = sorted(runs, key=lambda m: m.seconds)
    return ordered[(len(ordered) - 1) // 2]


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """A step of the timed pass, with its heap peak from the traced pass (if there was one)."""

    label: str
    rows: int
    rows_what: str
    timed: Measured
    traced: Measured | None
    runs_s: tuple[float, ...] = ()
    """Every run's seconds, when the step ran more than once (its figures are the median's)."""

    @property
    def rows_per_s(self) -> float:
        return ratio(self.rows, self.timed.seconds)

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "seconds": round(self.timed.seconds, 3),
            "rows": self.rows,
            "rows_are": self.rows_what,
            "rows_per_s": round(self.rows_per_s, 1),
            "cpu_seconds": {
                "this_process": round(self.timed.cpu_s, 3),
                "postgresql_backends": round(self.timed.postgres_cpu_s, 3),
            },
            "rss_peak_mib": _mib(self.timed.rss_peak),
            "rss_before_mib": _mib(self.timed.rss_before),
            "ru_maxrss_after_mib": _mib(self.timed.maxrss_after),
        }
        if self.runs_s:
            data["runs_seconds"] = [round(s, 3) for s in self.runs_s]
        if self.traced is not None:
            data["tracemalloc_peak_mib"] = _mib(self.traced.heap_peak or 0)
            data["traced_pass_seconds"] = round(self.traced.seconds, 3)
        return data


@dataclass(frozen=True, slots=True)
class AtMost:
    """A figure held to at most ``bar`` (a ratio), or below it (memory)."""

    name: str
    label: str
    value: float
    bar: float
    what: str
    strict: bool = False

    @property
    def met(self) -> bool:
        return self.value < self.bar if self.strict else self.value <= self.bar

    def as_json(self) -> dict[str, object]:
        key = "goal_below" if self.strict else "goal_at_most"
        return {"value": round(self.value, 3), key: self.bar, "met": self.met, "what": self.what}

    def line(self, unit: str = "") -> str:
        verdict = "met" if self.met else "NOT met"
        relation = "<" if self.strict else "<="
        return (
            f"  {self.label:<42}{self.value:>10.2f}   goal {relation} {self.bar:g}{unit}: {verdict}"
        )


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


@dataclass(frozen=True, slots=True)
class WorkbookFile:
    party: str
    rows: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ClearingBenchReport:
    timestamp: str
    machine: dict[str, object]
    entries: int
    members: int
    partners: int
    load: LoadFigures
    steps: dict[str, Step]
    workbooks: list[WorkbookFile]
    bare_workbooks: list[WorkbookFile]
    settlement: dict[str, object]
    traced_pass: bool
    process_peak_rss: int
    """``ru_maxrss`` at the end of the timed pass: the whole process, load included."""

    @property
    def goals(self) -> list[AtMost]:
        steps = self.steps
        group_by = steps["group_by"].timed.seconds
        return [
            AtMost(
                "netting_over_group_by",
                "netting (aggregate part) / raw GROUP BY",
                ratio(steps["netting"].timed.seconds, group_by),
                GOAL_NETTING_OVER_GROUP_BY,
                "settle's aggregate part: partner_aggregates + points_roll_forward + the pure "
                "netting and checks, median of the runs, over the raw GROUP BY's median",
            ),
            AtMost(
                "workbooks_over_bare_writer",
                "workbooks / bare openpyxl writer",
                ratio(steps["workbooks"].timed.seconds, steps["bare_writer"].timed.seconds),
                GOAL_WORKBOOKS_OVER_BARE,
                "every workbook through Clearing.write_workbook (database cursor included) "
                "over the bare write-only loop of as many rows into as many files",
            ),
            AtMost(
                "peak_rss_mib",
                "peak memory of the process (MiB)",
                self.process_peak_rss / MIB,
                GOAL_PEAK_MIB,
                "ru_maxrss at the end of the timed pass: the high-water mark of the whole "
                "process, load and every step included",
                strict=True,
            ),
        ]

    @property
    def informative(self) -> list[tuple[str, str, float]]:
        steps = self.steps
        group_by = steps["group_by"].timed.seconds
        return [
            (
                "settle_over_group_by",
                "settle overall / raw GROUP BY",
                ratio(steps["settle"].timed.seconds, group_by),
            ),
        ]

    def as_json(self) -> dict[str, object]:
        load = self.load
        return {
            "benchmark": "clearhouse bench clearing",
            "timestamp": self.timestamp,
            "machine": self.machine,
            "parameters": {
                "entries": self.entries,
                "members": self.members,
                "partners": self.partners,
                "period": PERIOD,
                "zone": ZONE.key,
                "second_contract_version_from": SECOND_VERSION_FROM.isoformat(),
            },
            "load": {
                "seconds": round(load.seconds, 3),
                "entries_per_s": round(ratio(load.entries, load.seconds), 1),
                "how": "set-based INSERT ... SELECT generate_series in one transaction, "
                "triggers and foreign keys on (the deferred balance triggers ran at commit); "
                "then VACUUM ANALYZE",
                "vacuum_analyze_seconds": round(load.vacuum_analyze_s, 3),
                "entries": load.entries,
                "postings": load.postings,
                "entries_by_kind": load.by_kind,
                "partners": load.partners,
                "database_bytes": load.database_bytes,
            },
            "steps": {name: step.as_json() for name, step in self.steps.items()},
            "goals": {g.name: g.as_json() for g in self.goals},
            "ratios_for_information": {
                name: round(value, 3) for name, _, value in self.informative
            },
            "memory": {
                "process_peak_rss_mib": _mib(self.process_peak_rss),
                "how": "rss_peak_mib: the highest resident set of this process during the step, "
                f"sampled every {RSS_SAMPLE_S * 1000:g} ms from /proc/self/statm (timed pass); "
                "ru_maxrss_after_mib: getrusage's ru_maxrss after the step, the high-water "
                "mark of the whole process so far (it never goes down, so it may be an earlier "
                "step's); tracemalloc_peak_mib: the peak of Python allocations made during the "
                "step (traced pass, on a copy of the database; memory that C libraries such as "
                "libxml2 and zlib take is not in it). PostgreSQL's memory is in none of them.",
                "traced_pass": self.traced_pass,
            },
            "workbooks": [
                {"party": w.party, "rows": w.rows, "bytes": w.size_bytes} for w in self.workbooks
            ],
            "bare_workbooks": [
                {"party": w.party, "rows": w.rows, "bytes": w.size_bytes}
                for w in self.bare_workbooks
            ],
            "settlement": self.settlement,
            "checks": {
                "invariant_violations_after_load": load.invariant_violations,
            },
        }


def _mib(value: int) -> float:
    return round(value / MIB, 1)


def write_report(report: ClearingBenchReport, path: Path) -> None:
    write_json(report.as_json(), path)


def render(report: ClearingBenchReport) -> str:
    """The figures as a plain-text table."""
    load = report.load
    lines = [
        headline(
            "clearhouse bench clearing",
            f"{report.entries:,} entries, {report.members:,} members, "
            f"{report.partners} partners, period {PERIOD}",
            report.machine,
        ),
        "",
        f"  bulk load: {load.entries:,} entries, {load.postings:,} postings in "
        f"{load.seconds:,.1f} s ({ratio(load.entries, load.seconds):,.0f} entries/s, triggers on)"
        f"; VACUUM ANALYZE {load.vacuum_analyze_s:,.1f} s",
        "  kinds: " + ", ".join(f"{k} {v:,}" for k, v in sorted(load.by_kind.items())),
        "",
        f"  {'step':<34}{'seconds':>9}{'rows/s':>11}{'rows':>11}"
        f"{'CPU here':>9}{'CPU pg':>8}{'RSS peak':>9}{'maxrss':>8}{'py heap':>8}",
        f"  {'':<34}{'':>9}{'':>11}{'':>11}{'s':>9}{'s':>8}{'MiB':>9}{'MiB':>8}{'MiB':>8}",
    ]
    for step in report.steps.values():
        timed = step.timed
        heap = "-" if step.traced is None else f"{(step.traced.heap_peak or 0) / MIB:,.1f}"
        lines.append(
            f"  {step.label:<34}{timed.seconds:>9,.2f}{step.rows_per_s:>11,.0f}{step.rows:>11,}"
            f"{timed.cpu_s:>9,.1f}{timed.postgres_cpu_s:>8,.1f}{timed.rss_peak / MIB:>9,.1f}"
            f"{timed.maxrss_after / MIB:>8,.1f}{heap:>8}"
        )
    lines += [
        "",
        "  rows: entries (close, settle, netting, GROUP BY), entry rows written (workbooks, bare).",
        "  CPU here: this process, all threads; CPU pg: the bench database's PostgreSQL backends.",
        "  RSS peak: sampled during the step; maxrss: ru_maxrss after it (process high-water);",
        "  py heap: tracemalloc peak of the step, from the traced pass on a copy of the database.",
    ]
    if report.traced_pass:
        lines.append(
            "  traced pass seconds (under tracemalloc): "
            + ", ".join(
                f"{name} {step.traced.seconds:,.1f}"
                for name, step in report.steps.items()
                if step.traced is not None
            )
        )
    lines += ["", f"  {'ratio':<42}{'value':>10}   bar"]
    lines += [g.line(" MiB" if g.strict else "") for g in report.goals]
    lines += [
        f"  {label:<42}{value:>10.2f}   (for information)" for _, label, value in report.informative
    ]
    lines.append("")
    if load.invariant_violations:
        lines.append(
            f"  LEDGER INVARIANTS BROKEN AFTER THE LOAD ({len(load.invariant_violations)}):"
        )
        lines += [f"    {v}" for v in load.invariant_violations[:20]]
    else:
        lines.append("  ledger invariants after the load: all hold")
    coalition = report.settlement
    lines.append(
        f"  settled: multilateral check {coalition['multilateral_check']}, roll-forward closes "
        f"at {coalition['roll_forward_closing']:,} = member balances "
        f"{coalition['member_balances_at_cut_off']:,}"
    )
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------------


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


async def _prepare(
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


async def _netting(database: Database, closed: PeriodRow) -> None:
    """What ``settle`` does before it writes: the two aggregate queries, netting, the checks."""
    async with database.transaction() as connection:
        aggregates = await clearing_store.partner_aggregates(
            connection, closed.starts_at, closed.ends_at
        )
        # The bench month is the first: its opening is summed from the (empty) history.
        roll_forward = await clearing_store.points_roll_forward(
            connection, closed.starts_at, closed.ends_at, None
        )
        partner_ids = sorted({a.partner_id for a in aggregates})
        versions = {p: await contract_store.partner_versions(connection, p) for p in partner_ids}
    nets = [
        net_partner(
            p,
            [a for a in aggregates if a.partner_id == p],
            {v.version: v for v in versions[p]},
        )
        for p in partner_ids
    ]
    problems = check_settlement(nets, coalition_margin(nets), roll_forward)
    if problems:
        raise BenchError("the netting does not add up: " + "; ".join(problems))


async def _group_by(database: Database, closed: PeriodRow) -> None:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(RAW_GROUP_BY, closed.starts_at, closed.ends_at)
    if not rows:
        raise BenchError("the raw GROUP BY found no postings")


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")


def _bare_rows(count: int, partner_id: str, seed: str) -> Iterator[list[object]]:
    """Rows of the Entries sheet's ten columns as plain values, alike in kind and length to the
    real ones (random UUIDs, member ids, references, one in ten a reversal)."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    moment = datetime(2030, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # Excel's carry no zone
    tick = timedelta(seconds=2)
    kinds = ("issue", "issue", "issue", "issue", "issue", "issue", "redeem", "redeem", "redeem")
    for n in range(count):
        moment += tick
        reversal = n % 10 == 9
        yield [
            str(UUID(int=bits(128))),
            moment,
            moment - tick,
            "reversal" if reversal else kinds[n % 9],
            partner_id,
            f"bench-member-{bits(17) % 100_000:06d}",
            bits(7) + 1,
            1,
            "return of goods" if reversal else f"receipt {bits(32):08x}",
            str(UUID(int=bits(128))) if reversal else None,
        ]


def bare_workbook(party: str, count: int, path: Path) -> WorkbookFile:
    """The reference: a write-only workbook of ``count`` rows of the same ten columns, plain
    values, no formats or cell objects; past Excel's row limit on a further sheet."""
    header = [name for name, _ in ENTRY_COLUMNS]
    workbook = Workbook(write_only=True)
    rows = _bare_rows(count, party, seed=party)
    left, number = count, 0
    while True:
        number += 1
        sheet = workbook.create_sheet(entries_sheet_title(number))
        sheet.append(header)
        take = min(left, EXCEL_MAX_ROWS - 1)
        for _ in range(take):
            sheet.append(next(rows))
        left -= take
        if left <= 0:
            break
    workbook.save(path)
    return WorkbookFile(party, count, path.stat().st_size)


@dataclass(slots=True)
class _Pass:
    steps: dict[str, Measured] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    workbooks: list[WorkbookFile] = field(default_factory=list)
    bare: list[WorkbookFile] = field(default_factory=list)
    settlement: dict[str, object] = field(default_factory=dict)


async def _run_pass(
    database: Database,
    server: Server,
    *,
    traced: bool,
    repeats: int,
    progress: Callable[[str], None],
) -> _Pass:
    """Close, settle, the netting and the GROUP BY alternately, the workbooks, the bare writer;
    traced: close, settle and the workbooks only, each under tracemalloc."""
    figures = _Pass()
    clearing = Clearing(
        database,
        zone=ZONE,
        key=CoalitionKey.of(Ed25519PrivateKey.generate()),
        coalition="Bench coalition",
    )
    how = "under tracemalloc" if traced else "timed"
    await checkpoint(server)
    progress(f"close {PERIOD} ({how})")
    async with measuring(database, traced) as figures.steps["close"]:
        closed = await clearing.close(PERIOD)
    await checkpoint(server)
    progress(f"settle {PERIOD} ({how})")
    async with measuring(database, traced) as figures.steps["settle"]:
        settlement = await clearing.settle(PERIOD)
    coalition = next(s for s in settlement.statements if s.party == COALITION_PARTY).body()
    roll = coalition["points_roll_forward"]
    figures.settlement = {
        "root": closed.root.hex(),
        "entry_count": closed.entry_count,
        "statements": len(settlement.statements),
        "multilateral_check": coalition["multilateral_check"],
        "coalition_margin": coalition["coalition_margin"],
        "roll_forward_closing": roll["closing"],
        "member_balances_at_cut_off": roll["member_balances_at_cut_off"],
        "nets": {
            s.party: s.body()["net"] for s in settlement.statements if s.party != COALITION_PARTY
        },
    }

    if not traced:
        await checkpoint(server)
        progress(f"netting's aggregate part and the raw GROUP BY, alternately, {repeats} times")
        netting: list[Measured] = []
        group_by: list[Measured] = []
        for _ in range(repeats):
            async with measuring(database, traced) as run:
                await _netting(database, closed)
            netting.append(run)
            async with measuring(database, traced) as run:
                await _group_by(database, closed)
            group_by.append(run)
        figures.steps["netting"], figures.steps["group_by"] = _median(netting), _median(group_by)
        figures.runs["netting"] = [m.seconds for m in netting]
        figures.runs["group_by"] = [m.seconds for m in group_by]

    counts = await _rows_per_party(database, closed, settlement)
    # Each workbook, then (timed pass) the bare writer's of as many rows, party by party: the
    # two figures are taken side by side, so a drift of a shared machine bears on both alike.
    progress(
        f"{len(counts)} workbooks through Clearing.write_workbook ({how})"
        + ("" if traced else ", each followed by the bare openpyxl writer's of as many rows")
    )
    real: list[Measured] = []
    bare: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="clearhouse-bench-workbooks-") as folder:
        for party, count in counts:
            path = Path(folder) / f"{party}.xlsx"
            async with measuring(database, traced) as run:
                with _open_for_writing(path) as out:
                    await clearing.write_workbook(PERIOD, party, out)
            real.append(run)
            figures.workbooks.append(WorkbookFile(party, count, path.stat().st_size))
            path.unlink()
            if traced:
                continue
            path = Path(folder) / f"{party}-bare.xlsx"
            async with measuring(database, traced) as run:
                figures.bare.append(bare_workbook(party, count, path))
            bare.append(run)
            path.unlink()
    figures.steps["workbooks"] = Measured.combined(real)
    if bare:
        figures.steps["bare_writer"] = Measured.combined(bare)
    return figures


async def _rows_per_party(
    database: Database, closed: PeriodRow, settlement: Settlement
) -> list[tuple[str, int]]:
    """Each statement's party and the entries its workbook lists (the coalition's: all)."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            """
            SELECT partner_id, count(*) AS n FROM entries
             WHERE recorded_at >= $1 AND recorded_at < $2 GROUP BY partner_id
            """,
            closed.starts_at,
            closed.ends_at,
        )
    per_partner = {r["partner_id"]: int(r["n"]) for r in rows}
    return [
        (s.party, closed.entry_count if s.party == COALITION_PARTY else per_partner.get(s.party, 0))
        for s in settlement.statements
    ]


async def _copy_database(server: Server, source: str, target: str) -> None:
    """``target`` as a file copy of ``source`` (nobody may be connected to ``source``)."""
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await connection.execute(
            f'CREATE DATABASE "{target}" TEMPLATE "{source}" STRATEGY FILE_COPY'
        )
    finally:
        await connection.close()


async def run_clearing_bench(
    settings: Settings,
    *,
    entries: int,
    members: int,
    partners: int,
    repeats: int = 3,
    traced_pass: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> ClearingBenchReport:
    """Load a month, run the timed pass and (unless told not to) the traced pass; drop it all."""
    server = Server.from_settings(settings)
    facts = await server_facts(server)
    load_at_start = _load_average()
    traced: _Pass | None = None
    try:
        progress(f"creating {BENCH_DATABASE} on {server.describe()}")
        await recreate_database(server, BENCH_DATABASE)
        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=2)
        try:
            load = await _prepare(
                database, entries=entries, members=members, partners=partners, progress=progress
            )
        finally:
            await database.dispose()
        if traced_pass:
            progress(f"copying {BENCH_DATABASE} to {TRACED_DATABASE} for the traced pass")
            await _copy_database(server, BENCH_DATABASE, TRACED_DATABASE)

        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=2)
        try:
            timed = await _run_pass(
                database, server, traced=False, repeats=repeats, progress=progress
            )
        finally:
            await database.dispose()
        process_peak = _maxrss_bytes()
        await drop_database(server, BENCH_DATABASE)

        if traced_pass:
            database = Database.for_url(server.sqlalchemy_url(TRACED_DATABASE), pool_size=2)
            try:
                traced = await _run_pass(
                    database, server, traced=True, repeats=1, progress=progress
                )
            finally:
                await database.dispose()
    finally:
        progress(f"dropping {BENCH_DATABASE} and {TRACED_DATABASE}")
        await drop_database(server, BENCH_DATABASE)
        await drop_database(server, TRACED_DATABASE)

    total_rows = sum(w.rows for w in timed.workbooks)
    specs: list[tuple[str, str, int, str]] = [
        ("close", "close (ledger root)", entries, "canonical entries hashed"),
        ("settle", "settle (net, post, state, sign)", entries, "entries netted"),
        ("netting", "  netting: aggregate part", entries, "entries netted"),
        ("group_by", "raw GROUP BY (reference)", entries, "entries (two postings each)"),
        ("workbooks", f"workbooks ({len(timed.workbooks)})", total_rows, "entry rows written"),
        ("bare_writer", "bare openpyxl writer (reference)", total_rows, "entry rows written"),
    ]
    steps = {
        name: Step(
            label,
            rows,
            what,
            timed.steps[name],
            None if traced is None else traced.steps.get(name),
            tuple(timed.runs.get(name, ())),
        )
        for name, label, rows, what in specs
    }
    machine = machine_facts(server, facts) | {
        "load_average_at_start": load_at_start,
        "load_average_at_end": _load_average(),
        "memory_total_mib": _memory_total_mib(),
        "openpyxl": openpyxl.__version__,
        "openpyxl_uses_lxml": bool(getattr(openpyxl, "LXML", False)),
    }
    return ClearingBenchReport(
        timestamp=timestamp(),
        machine=machine,
        entries=entries,
        members=members,
        partners=partners,
        load=load,
        steps=steps,
        workbooks=timed.workbooks,
        bare_workbooks=timed.bare,
        settlement=timed.settlement,
        traced_pass=traced is not None,
        process_peak_rss=process_peak,
    )


def _load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: how busy others kept it."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def _memory_total_mib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None
