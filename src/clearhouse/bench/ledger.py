"""``clearhouse bench ledger``: entries per second through the ledger service, beside two limits.

In one run, on one server, each for the same time with the same number of concurrent workers:

- the ledger service (``services.posting.Ledger``) posting a mix of issues and redeems, in two
  shapes: spread over 10,000 members and 5 partners, and all traffic from one partner (a hot
  partner row would show here as a drop);
- "bare": one ``SELECT ledger_post(...)`` per entry on a plain asyncpg pool in autocommit, with
  neither SQLAlchemy nor domain code: the most this machine posts (SPEC section 3);
- pgbench's built-in TPC-B, with the pgbench that the ``pgserver`` wheel ships.

The three runs go in two halves each, around pgbench (A B C pgbench C B A), so that the drift of
a shared machine bears on every figure alike and the ratios compare like with like.
It works in databases of its own (``clearhouse_bench``, ``clearhouse_pgbench``), made afresh and
dropped at the end. Every call carries an idempotency key of its own. A figure, not a test; the
ledger's invariants are still checked once at the end, so a fast but wrong run cannot pass.

The server, its bench databases and pgbench are ``bench.servers``; the machine facts, bars and
JSON file are ``bench.report``. The setup (``prepare``), the service's post (``service_post``)
and the timed loop (``drive``) serve ``clearhouse bench api`` too.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import asyncpg

from clearhouse.bench.report import (
    Ratio,
    check_lines,
    headline,
    machine_facts,
    ratio,
    timestamp,
    write_json,
)
from clearhouse.bench.servers import (
    PGBENCH_DATABASE,
    PGBENCH_SCALE,
    BenchError,
    Server,
    checkpoint,
    drop_database,
    pgbench_executable,
    pgbench_init,
    pgbench_threads,
    pgbench_tpcb,
    recreate_database,
    server_facts,
)
from clearhouse.config import Settings
from clearhouse.domain.errors import InsufficientPoints
from clearhouse.domain.money import POINTS_PER_ENTRY_MAX
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger, PointsRequest
from clearhouse.storage import ledger as store
from clearhouse.storage.migrate import upgrade
from clearhouse.storage.sqlstates import SQLSTATE_INSUFFICIENT_POINTS

__all__ = [
    "BenchError",
    "LedgerBenchReport",
    "Throughput",
    "bench_ids",
    "bench_ledger",
    "drive",
    "pick",
    "prepare",
    "render",
    "run_ledger_bench",
    "service_post",
    "write_report",
]

BENCH_DATABASE: Final = "clearhouse_bench"
PARTNERS: Final = 5
MEMBERS: Final = 10_000
SEED_POINTS: Final = 1_000_000
"""Each member's opening balance: far more than the redeems of any run can take."""
POINTS_MAX: Final = 100
"""Each issue or redeem moves 1 to this many points."""
ISSUE_SHARE: Final = 0.5
"""The share of issues in the mix; the rest are redeems."""
WARMUP_SECONDS: Final = 1.0
BENCH_CONTRACT_VERSION: Final = 1
BENCH_ZONE: Final = "Europe/Berlin"
DEFAULT_OUT: Final = Path("reports") / "bench-ledger.json"

GOAL_ONE_PARTNER_OVER_SPREAD: Final = 0.90
GOAL_SPREAD_OVER_PGBENCH: Final = 0.50
AIM_SERVICE_OVER_BARE: Final = 0.70

_BARE_POST: Final = """
SELECT recorded_at, member_balance_after FROM ledger_post(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
"""

_LABELS: Final = {
    "spread": "ledger service, spread",
    "one-partner": "ledger service, one partner",
    "bare": "bare ledger_post (asyncpg)",
}

Post = Callable[[random.Random, str], Awaitable[bool]]
"""Posts one entry under the given idempotency key; False when it was refused (no points)."""


@dataclass(frozen=True, slots=True)
class Throughput:
    """What the workers of one timed run achieved."""

    entries: int
    refused: int
    elapsed_s: float

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def total(cls, runs: Sequence[Throughput]) -> Throughput:
        return cls(
            sum(r.entries for r in runs),
            sum(r.refused for r in runs),
            sum(r.elapsed_s for r in runs),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "refused": self.refused,
            "elapsed_s": round(self.elapsed_s, 3),
            "entries_per_s": round(self.entries_per_s, 1),
        }


@dataclass(frozen=True, slots=True)
class LedgerBenchReport:
    timestamp: str
    machine: dict[str, object]
    workers: int
    seconds: int
    seed: Throughput
    spread: Throughput
    one_partner: Throughput
    bare: Throughput
    pgbench_tps: float
    entries_posted: int
    entries_in_database: int
    invariant_violations: list[str]

    @property
    def ratios(self) -> list[Ratio]:
        spread = self.spread.entries_per_s
        return [
            Ratio(
                "one_partner_over_spread",
                "one partner / spread",
                ratio(self.one_partner.entries_per_s, spread),
                GOAL_ONE_PARTNER_OVER_SPREAD,
                binding=True,
            ),
            Ratio(
                "spread_over_pgbench",
                "spread / pgbench TPC-B",
                ratio(spread, self.pgbench_tps),
                GOAL_SPREAD_OVER_PGBENCH,
                binding=True,
            ),
            Ratio(
                "service_over_bare",
                "service (spread) / bare",
                ratio(spread, self.bare.entries_per_s),
                AIM_SERVICE_OVER_BARE,
                binding=False,
            ),
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "benchmark": "clearhouse bench ledger",
            "timestamp": self.timestamp,
            "machine": self.machine,
            "workers": self.workers,
            "seconds": self.seconds,
            "members": MEMBERS,
            "partners": PARTNERS,
            "mix": {
                "issue_share": ISSUE_SHARE,
                "points_per_entry": [1, POINTS_MAX],
                "seed_points_per_member": SEED_POINTS,
            },
            "entries_per_s": {
                "spread": round(self.spread.entries_per_s, 1),
                "one_partner": round(self.one_partner.entries_per_s, 1),
                "bare": round(self.bare.entries_per_s, 1),
            },
            "pgbench_tps": round(self.pgbench_tps, 1),
            "pgbench": {
                "mode": "built-in TPC-B",
                "scale": PGBENCH_SCALE,
                "clients": self.workers,
                "threads": pgbench_threads(self.workers),
            },
            "ratios": {r.name: r.as_json() for r in self.ratios},
            "runs": {
                "seed": self.seed.as_json(),
                "spread": self.spread.as_json(),
                "one_partner": self.one_partner.as_json(),
                "bare": self.bare.as_json(),
            },
            "checks": {
                "entries_posted": self.entries_posted,
                "entries_in_database": self.entries_in_database,
                "invariant_violations": self.invariant_violations,
            },
        }


def bench_ids() -> tuple[list[str], list[str]]:
    """The ids of the bench's partners and members."""
    partner_ids = [f"bench-partner-{n}" for n in range(1, PARTNERS + 1)]
    member_ids = [f"bench-member-{n:05d}" for n in range(1, MEMBERS + 1)]
    return partner_ids, member_ids


async def prepare(
    database: Database,
    partner_ids: Sequence[str],
    member_ids: Sequence[str],
    workers: int,
    progress: Callable[[str], None],
) -> Throughput:
    """Migrate an empty database, add the partners, enrol and seed the members."""
    progress("migrating, adding partners, enrolling members")
    await upgrade(database.engine)
    await load_contracts(
        database,
        [
            (f"{partner_id}.v1.toml", bench_contract(partner_id).encode())
            for partner_id in partner_ids
        ],
    )
    await enrol_members(database, member_ids)
    progress(f"seeding {len(member_ids):,} members with {SEED_POINTS:,} points each (issues)")
    return await _seed(bench_ledger(database), partner_ids, member_ids, workers)


def bench_contract(partner_id: str) -> str:
    """Contract version 1 for a bench partner: in force since 2000, limits out of the way."""
    return f"""
partner_id = "{partner_id}"
version = {BENCH_CONTRACT_VERSION}
effective_from = "2000-01-01T00:00:00Z"
legal_name = "Bench partner {partner_id}"

[settlement]
issue_rate = "0.01"
redemption_rate = "0.008"

[limits]
max_points_per_transaction = {SEED_POINTS}
max_points_per_member_per_day = {POINTS_PER_ENTRY_MAX}

[purposes.accrual]
legal_basis = "contract"
fields = ["member.balance"]

[purposes.redemption]
legal_basis = "contract"
fields = ["member.balance"]
"""


def bench_ledger(database: Database) -> Ledger:
    return Ledger(database, ContractBook(database), BENCH_ZONE)


async def run_ledger_bench(
    settings: Settings,
    *,
    workers: int,
    seconds: int,
    progress: Callable[[str], None] = lambda _: None,
) -> LedgerBenchReport:
    """Set up the bench databases, run every shape and both references, drop them again."""
    server = Server.from_settings(settings)
    pgbench = pgbench_executable()
    facts = await server_facts(server)
    try:
        progress(f"creating {BENCH_DATABASE} and {PGBENCH_DATABASE} on {server.describe()}")
        await recreate_database(server, BENCH_DATABASE)
        await recreate_database(server, PGBENCH_DATABASE)
        progress(f"pgbench -i -s {PGBENCH_SCALE}")
        await pgbench_init(pgbench, server)

        partner_ids, member_ids = bench_ids()
        posted = 0

        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=workers)
        pool: Any = None
        try:
            seed = await prepare(database, partner_ids, member_ids, workers, progress)
            ledger = bench_ledger(database)
            posted += seed.entries
            pool = await asyncpg.create_pool(
                server.dsn(BENCH_DATABASE),
                min_size=workers,
                max_size=workers,
                server_settings={"timezone": "UTC", "application_name": "clearhouse-bench-bare"},
            )
            posts: dict[str, Post] = {
                "spread": service_post(ledger, partner_ids, member_ids),
                "one-partner": service_post(ledger, partner_ids[:1], member_ids),
                "bare": _bare_post(pool, partner_ids, member_ids),
            }
            for name, post in posts.items():
                posted += (await drive(post, f"{name}-warmup", workers, WARMUP_SECONDS)).entries

            # Each run in two halves around pgbench (A B C pgbench C B A): the runs share one
            # centre in time, so a drift of the machine (a growing table, a busy neighbour)
            # weighs on every figure alike instead of on the last run only.
            runs: dict[str, list[Throughput]] = {name: [] for name in posts}
            half = seconds / 2
            for name in posts:
                progress(f"{_LABELS[name]}: {workers} workers for {half:g} s (first half)")
                await checkpoint(server)
                runs[name].append(await drive(posts[name], f"{name}-1", workers, half))
            await checkpoint(server)
            progress(f"pgbench TPC-B: {workers} clients for {seconds} s")
            tps = await pgbench_tpcb(pgbench, server, clients=workers, seconds=seconds)
            for name in reversed(posts):
                progress(f"{_LABELS[name]}: {workers} workers for {half:g} s (second half)")
                await checkpoint(server)
                runs[name].append(await drive(posts[name], f"{name}-2", workers, half))
            totals = {name: Throughput.total(halves) for name, halves in runs.items()}
            posted += sum(t.entries for t in totals.values())

            progress("checking the ledger's invariants")
            async with pool.acquire() as connection:
                violations = await store.invariant_violations(connection)
                in_database = int(await connection.fetchval("SELECT count(*) FROM entries"))
        finally:
            if pool is not None:
                await pool.close()
            await database.dispose()
    finally:
        progress(f"dropping {BENCH_DATABASE} and {PGBENCH_DATABASE}")
        await drop_database(server, BENCH_DATABASE)
        await drop_database(server, PGBENCH_DATABASE)

    return LedgerBenchReport(
        timestamp=timestamp(),
        machine=machine_facts(server, facts),
        workers=workers,
        seconds=seconds,
        seed=seed,
        spread=totals["spread"],
        one_partner=totals["one-partner"],
        bare=totals["bare"],
        pgbench_tps=tps,
        entries_posted=posted,
        entries_in_database=in_database,
        invariant_violations=violations,
    )


def write_report(report: LedgerBenchReport, path: Path) -> None:
    write_json(report.as_json(), path)


def render(report: LedgerBenchReport) -> str:
    """The figures as a plain-text table."""
    lines = [
        headline(
            "clearhouse bench ledger",
            f"{report.workers} workers, {report.seconds} s per run",
            report.machine,
        ),
        "",
        f"  {'run':<34}{'per second':>12}{'entries':>11}{'refused':>9}",
    ]
    rows: list[tuple[str, Throughput]] = [
        (_LABELS["spread"], report.spread),
        (_LABELS["one-partner"], report.one_partner),
        (_LABELS["bare"], report.bare),
    ]
    for label, run in rows:
        lines.append(f"  {label:<34}{run.entries_per_s:>12,.1f}{run.entries:>11,}{run.refused:>9,}")
    lines.append(f"  {'pgbench TPC-B (tps)':<34}{report.pgbench_tps:>12,.1f}")
    lines += ["", f"  {'ratio':<34}{'value':>12}   bar"]
    lines += [r.line() for r in report.ratios]
    lines.append("")
    lines += check_lines(
        report.invariant_violations, report.entries_posted, report.entries_in_database
    )
    return "\n".join(lines)


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


def _bare_post(pool: Any, partner_ids: Sequence[str], member_ids: Sequence[str]) -> Post:
    points_asset = ["PTS", "PTS"]

    async def post(rng: random.Random, key: str) -> bool:
        partner_id, member_id, points, issue = pick(rng, partner_ids, member_ids)
        member = f"member:{member_id}"
        if issue:
            kind, delta, accounts = "issue", points, [f"partner:{partner_id}:issued", member]
        else:
            kind, delta, accounts = "redeem", -points, [member, f"partner:{partner_id}:redeemed"]
        try:
            await pool.fetchrow(
                _BARE_POST,
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
                points_asset,
                [Decimal(-points), Decimal(points)],
                key,
                hashlib.sha256(key.encode()).digest(),
                None,
                None,
                None,
                BENCH_ZONE,
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == SQLSTATE_INSUFFICIENT_POINTS:
                return False
            raise
        return True

    return post


async def drive(post: Post, name: str, workers: int, seconds: float) -> Throughput:
    """``workers`` concurrent loops calling ``post`` until ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    entries = refused = 0
    start = loop.time()
    deadline = start + seconds

    async def worker(number: int) -> None:
        nonlocal entries, refused
        rng = random.Random(f"{name}-{number}")
        calls = 0
        while loop.time() < deadline:
            if await post(rng, f"bench-{name}-{number}-{calls}"):
                entries += 1
            else:
                refused += 1
            calls += 1

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return Throughput(entries, refused, loop.time() - start)


async def _seed(
    ledger: Ledger, partner_ids: Sequence[str], member_ids: Sequence[str], workers: int
) -> Throughput:
    """One issue of ``SEED_POINTS`` to every member, by the partners in turn."""
    loop = asyncio.get_running_loop()
    todo = iter(enumerate(member_ids))
    start = loop.time()

    async def worker() -> None:
        for n, member_id in todo:
            request = PointsRequest(member_id, SEED_POINTS, datetime.now(UTC), "bench seed")
            partner_id = partner_ids[n % len(partner_ids)]
            await ledger.issue(partner_id, request, idempotency_key=f"bench-seed-{n}")

    await asyncio.gather(*(worker() for _ in range(workers)))
    return Throughput(len(member_ids), 0, loop.time() - start)
