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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import random
import re
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import asyncpg
from sqlalchemy.engine import URL, make_url

from clearhouse.config import Settings
from clearhouse.domain.errors import InsufficientPoints
from clearhouse.services.coalition import add_partner, enrol_members
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger, PointsRequest
from clearhouse.storage import ledger as store
from clearhouse.storage.engine import resolve_database_url
from clearhouse.storage.migrate import upgrade

BENCH_DATABASE: Final = "clearhouse_bench"
PGBENCH_DATABASE: Final = "clearhouse_pgbench"
PARTNERS: Final = 5
MEMBERS: Final = 10_000
SEED_POINTS: Final = 1_000_000
"""Each member's opening balance: far more than the redeems of any run can take."""
POINTS_MAX: Final = 100
"""Each issue or redeem moves 1 to this many points."""
ISSUE_SHARE: Final = 0.5
"""The share of issues in the mix; the rest are redeems."""
WARMUP_SECONDS: Final = 1.0
PGBENCH_SCALE: Final = 10
PGBENCH_THREADS: Final = 2
DEFAULT_OUT: Final = Path("reports") / "bench-ledger.json"

GOAL_ONE_PARTNER_OVER_SPREAD: Final = 0.90
GOAL_SPREAD_OVER_PGBENCH: Final = 0.50
AIM_SERVICE_OVER_BARE: Final = 0.70

_SQLSTATE_INSUFFICIENT_POINTS: Final = "CH001"
_BARE_POST: Final = """
SELECT recorded_at, member_balance_after FROM ledger_post(
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
"""
_SERVER_SETTINGS: Final = (
    "max_connections",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_level",
)
_TPS = re.compile(r"^tps = ([0-9]+(?:\.[0-9]+)?) \(without initial connection time\)", re.M)
_TPS_ANY = re.compile(r"^tps = ([0-9]+(?:\.[0-9]+)?)", re.M)

_LABELS: Final = {
    "spread": "ledger service, spread",
    "one-partner": "ledger service, one partner",
    "bare": "bare ledger_post (asyncpg)",
}

Post = Callable[[random.Random, str], Awaitable[bool]]
"""Posts one entry under the given idempotency key; False when it was refused (no points)."""


class BenchError(Exception):
    """The benchmark could not run (pgbench missing or failing, server unreachable)."""


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
class Ratio:
    """One ratio of two figures and the bar it is held to."""

    name: str
    label: str
    value: float
    bar: float
    binding: bool
    """A goal of the issue (True) or an aim beyond it (False)."""

    @property
    def met(self) -> bool:
        return self.value >= self.bar

    def as_json(self) -> dict[str, object]:
        return {
            "value": round(self.value, 3),
            "goal" if self.binding else "aim": self.bar,
            "met": self.met,
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
        def ratio(top: float, bottom: float) -> float:
            return top / bottom if bottom > 0 else 0.0

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
                "threads": min(PGBENCH_THREADS, self.workers),
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


@dataclass(frozen=True, slots=True)
class Server:
    """The PostgreSQL server the benchmark runs on, as a SQLAlchemy URL of any one database."""

    url: URL
    embedded: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Server:
        return cls(make_url(resolve_database_url(settings)), settings.database_url is None)

    def sqlalchemy_url(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def dsn(self, database: str | None = None) -> str:
        """A plain libpq DSN for asyncpg; the URL's own database when ``database`` is None."""
        url = self.url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    @property
    def host(self) -> str | None:
        """The host, or the socket directory of the ``host`` query parameter (embedded)."""
        query_host = self.url.query.get("host")
        if isinstance(query_host, str) and query_host:
            return query_host
        return self.url.host

    def pgbench_options(self) -> list[str]:
        options = ["-U", self.url.username or "postgres"]
        if self.host:
            options += ["-h", self.host]
        if self.url.port:
            options += ["-p", str(self.url.port)]
        return options

    def pgbench_environment(self) -> dict[str, str] | None:
        """The child's environment: ours, plus the password when the URL holds one."""
        if not self.url.password:
            return None
        return {**os.environ, "PGPASSWORD": str(self.url.password)}

    def describe(self) -> str:
        if self.embedded:
            return "embedded (pgserver, Unix socket)"
        return f"{self.url.host or self.host}:{self.url.port or 5432}"


def pgbench_executable() -> Path:
    """The pgbench shipped in the ``pgserver`` wheel."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as under root); the fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

    path = Path(str(pgserver.__file__)).parent / "pginstall" / "bin" / "pgbench"
    if not path.is_file():
        raise BenchError(f"pgbench is not where the pgserver wheel keeps it: {path}")
    return path


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
    facts = await _server_facts(server)
    try:
        progress(f"creating {BENCH_DATABASE} and {PGBENCH_DATABASE} on {server.describe()}")
        await _recreate_database(server, BENCH_DATABASE)
        await _recreate_database(server, PGBENCH_DATABASE)
        progress(f"pgbench -i -s {PGBENCH_SCALE}")
        await _pgbench(pgbench, server, ["-i", "-q", "-s", str(PGBENCH_SCALE)])

        partner_ids = [f"bench-partner-{n}" for n in range(1, PARTNERS + 1)]
        member_ids = [f"bench-member-{n:05d}" for n in range(1, MEMBERS + 1)]
        posted = 0

        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=workers)
        pool: Any = None
        try:
            progress("migrating, adding partners, enrolling members")
            await upgrade(database.engine)
            for partner_id in partner_ids:
                await add_partner(database, partner_id, f"Bench partner {partner_id}")
            await enrol_members(database, member_ids)
            ledger = Ledger(database)
            progress(f"seeding {MEMBERS:,} members with {SEED_POINTS:,} points each (issues)")
            seed = await _seed(ledger, partner_ids, member_ids, workers)
            posted += seed.entries
            pool = await asyncpg.create_pool(
                server.dsn(BENCH_DATABASE),
                min_size=workers,
                max_size=workers,
                server_settings={"timezone": "UTC", "application_name": "clearhouse-bench-bare"},
            )
            posts: dict[str, Post] = {
                "spread": _service_post(ledger, partner_ids, member_ids),
                "one-partner": _service_post(ledger, partner_ids[:1], member_ids),
                "bare": _bare_post(pool, partner_ids, member_ids),
            }
            for name, post in posts.items():
                posted += (await _drive(post, f"{name}-warmup", workers, WARMUP_SECONDS)).entries

            # Each run in two halves around pgbench (A B C pgbench C B A): the runs share one
            # centre in time, so a drift of the machine (a growing table, a busy neighbour)
            # weighs on every figure alike instead of on the last run only.
            runs: dict[str, list[Throughput]] = {name: [] for name in posts}
            half = seconds / 2
            for name in posts:
                progress(f"{_LABELS[name]}: {workers} workers for {half:g} s (first half)")
                await _checkpoint(server)
                runs[name].append(await _drive(posts[name], f"{name}-1", workers, half))
            await _checkpoint(server)
            progress(f"pgbench TPC-B: {workers} clients for {seconds} s")
            threads = min(PGBENCH_THREADS, workers)
            output = await _pgbench(
                pgbench, server, ["-c", str(workers), "-j", str(threads), "-T", str(seconds), "-n"]
            )
            tps = parse_pgbench_tps(output)
            for name in reversed(posts):
                progress(f"{_LABELS[name]}: {workers} workers for {half:g} s (second half)")
                await _checkpoint(server)
                runs[name].append(await _drive(posts[name], f"{name}-2", workers, half))
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
        await _drop_database(server, BENCH_DATABASE)
        await _drop_database(server, PGBENCH_DATABASE)

    return LedgerBenchReport(
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "postgresql_version": facts.pop("version"),
            "postgresql_settings": facts,
            "server": server.describe(),
        },
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


def parse_pgbench_tps(output: str) -> float:
    match = _TPS.search(output) or _TPS_ANY.search(output)
    if match is None:
        raise BenchError(f"no tps in pgbench's output:\n{output[-2000:]}")
    return float(match.group(1))


def write_report(report: LedgerBenchReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")


def render(report: LedgerBenchReport) -> str:
    """The figures as a plain-text table."""
    machine = report.machine
    lines = [
        f"clearhouse bench ledger: {report.workers} workers, {report.seconds} s per run, "
        f"{machine['cpu_count']} CPUs, PostgreSQL {machine['postgresql_version']} "
        f"({machine['server']})",
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
    for r in report.ratios:
        kind = "goal" if r.binding else "aim"
        verdict = "met" if r.met else "NOT met"
        lines.append(f"  {r.label:<34}{r.value:>12.2f}   {kind} >= {r.bar:.2f}: {verdict}")
    lines.append("")
    if report.invariant_violations:
        lines.append(f"  LEDGER INVARIANTS BROKEN ({len(report.invariant_violations)}):")
        lines += [f"    {v}" for v in report.invariant_violations[:20]]
    else:
        lines.append("  ledger invariants: all hold")
    if report.entries_in_database != report.entries_posted:
        lines.append(
            f"  ENTRY COUNT MISMATCH: {report.entries_posted:,} posted, "
            f"{report.entries_in_database:,} in the database"
        )
    else:
        lines.append(f"  entries in the database: {report.entries_in_database:,} (as posted)")
    return "\n".join(lines)


def _pick(
    rng: random.Random, partner_ids: Sequence[str], member_ids: Sequence[str]
) -> tuple[str, str, int, bool]:
    """A partner, a member, the points and whether it is an issue (else a redeem)."""
    partner_id = partner_ids[rng.randrange(len(partner_ids))]
    member_id = member_ids[rng.randrange(len(member_ids))]
    return partner_id, member_id, rng.randint(1, POINTS_MAX), rng.random() < ISSUE_SHARE


def _service_post(ledger: Ledger, partner_ids: Sequence[str], member_ids: Sequence[str]) -> Post:
    async def post(rng: random.Random, key: str) -> bool:
        partner_id, member_id, points, issue = _pick(rng, partner_ids, member_ids)
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
        partner_id, member_id, points, issue = _pick(rng, partner_ids, member_ids)
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
                None,
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
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == _SQLSTATE_INSUFFICIENT_POINTS:
                return False
            raise
        return True

    return post


async def _drive(post: Post, name: str, workers: int, seconds: float) -> Throughput:
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


async def _server_facts(server: Server) -> dict[str, object]:
    try:
        connection = await asyncpg.connect(server.dsn())
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot reach PostgreSQL at {server.describe()}: {exc}") from exc
    try:
        facts: dict[str, object] = {"version": await connection.fetchval("SHOW server_version")}
        for row in await connection.fetch(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])",
            list(_SERVER_SETTINGS),
        ):
            unit = row["unit"] or ""
            facts[row["name"]] = f"{row['setting']}{' x ' + unit if unit else ''}"
        return facts
    finally:
        await connection.close()


async def _recreate_database(server: Server, name: str) -> None:
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(server: Server, name: str) -> None:
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _checkpoint(server: Server) -> None:
    """Start each run with clean buffers, so one run's dirty pages do not slow the next."""
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass  # not a superuser: the runs go without
    finally:
        await connection.close()


async def _pgbench(executable: Path, server: Server, arguments: list[str]) -> str:
    process = await asyncio.create_subprocess_exec(
        str(executable),
        *arguments,
        *server.pgbench_options(),
        PGBENCH_DATABASE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=server.pgbench_environment(),
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"pgbench {' '.join(arguments)} failed:\n{text[-2000:]}")
    return text
