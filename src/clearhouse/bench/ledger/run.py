"""The ledger benchmark's run: the bench databases made, every shape and both references run in
halves around pgbench, the invariants checked, everything dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import asyncpg
from sqlalchemy.engine import make_url

from clearhouse.bench.ledger.coalition import (
    BENCH_DATABASE,
    LOT_REDEEM_POINTS,
    LOT_SHAPES,
    WARMUP_SECONDS,
    bench_ids,
    bench_ledger,
    lot_members,
    prepare,
    prepare_lot_members,
)
from clearhouse.bench.ledger.driving import Post, Throughput, drive, drive_each
from clearhouse.bench.ledger.limit import bare_entries, bare_statement_post, prepare_bare_tables
from clearhouse.bench.ledger.posting import bare_post, bare_redeem, service_post
from clearhouse.bench.ledger.report import LABELS, AsyncCommit, LedgerBenchReport
from clearhouse.bench.report import (
    machine_facts,
    timestamp,
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
    pgbench_tpcb,
    recreate_database,
    server_facts,
)
from clearhouse.config import Settings
from clearhouse.services.database import Database, no_reset
from clearhouse.storage import ledger as store

ASYNC_COMMIT: Final = {"synchronous_commit": "off"}
"""The service's figure with commits that do not wait for the WAL flush: set on that run's own
connections only (their URL's options); every other run and the product keep the default."""


async def _lot_runs(
    pool: Any,
    server: Server,
    partner_ids: list[str],
    workers: int,
    progress: Callable[[str], None],
) -> dict[str, Throughput]:
    """Bare redeems of all of each member's points, from members holding them in one lot and
    in twenty, each shape's members in two halves (one, twenty, twenty, one) like the runs
    above."""
    post = bare_redeem(pool, partner_ids, LOT_REDEEM_POINTS)
    halves = {shape: _halves(lot_members(shape).ids()) for shape in LOT_SHAPES}
    runs: dict[str, list[Throughput]] = {shape: [] for shape in LOT_SHAPES}
    for shape in [*LOT_SHAPES, *reversed(LOT_SHAPES)]:
        members = halves[shape][len(runs[shape])]
        progress(f"bare redeems of {LOT_REDEEM_POINTS} points, {shape}: {len(members):,} members")
        await checkpoint(server)
        runs[shape].append(await drive_each(post, f"{shape}-{len(runs[shape])}", members, workers))
    return {shape: Throughput.total(parts) for shape, parts in runs.items()}


async def _async_commit(database: Database) -> AsyncCommit:
    """The async run's connections as the server sees them, and the window it may lose."""
    async with database.driver_connection() as connection:
        setting = str(await connection.fetchval("SHOW synchronous_commit"))
        delay_ms = int(
            await connection.fetchval(
                "SELECT setting::integer FROM pg_settings WHERE name = 'wal_writer_delay'"
            )
        )
    if setting != ASYNC_COMMIT["synchronous_commit"]:
        raise BenchError(f"the async run's connections have synchronous_commit={setting}")
    return AsyncCommit(setting, delay_ms)


def _halves(member_ids: list[str]) -> tuple[list[str], list[str]]:
    middle = len(member_ids) // 2
    return member_ids[:middle], member_ids[middle:]


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

        url = server.sqlalchemy_url(BENCH_DATABASE)
        database = Database.for_url(url, pool_size=workers)
        async_url = make_url(url).update_query_dict(ASYNC_COMMIT)
        async_database = Database.for_url(
            async_url.render_as_string(hide_password=False), pool_size=workers
        )
        pool: Any = None
        try:
            seed = await prepare(database, partner_ids, member_ids, workers, progress)
            ledger = bench_ledger(database)
            posted += seed.entries
            async_commit = await _async_commit(async_database)
            pool = await asyncpg.create_pool(
                server.dsn(BENCH_DATABASE),
                min_size=workers,
                max_size=workers,
                server_settings={"timezone": "UTC", "application_name": "clearhouse-bench-bare"},
                # As the service's pool: asyncpg's default reset would cost the bare runs a
                # round trip per entry that the service does not pay.
                reset=no_reset,
            )
            async with pool.acquire() as connection:
                await prepare_bare_tables(connection)
            posts: dict[str, Post] = {
                "spread": service_post(ledger, partner_ids, member_ids),
                "one-partner": service_post(ledger, partner_ids[:1], member_ids),
                "service-async": service_post(
                    bench_ledger(async_database), partner_ids, member_ids
                ),
                "bare": bare_post(pool, partner_ids, member_ids),
                "bare-statement": bare_statement_post(pool, partner_ids, member_ids),
            }
            warmed: dict[str, int] = {}
            for name, post in posts.items():
                warm = await drive(post, f"{name}-warmup", workers, WARMUP_SECONDS)
                warmed[name] = warm.entries

            # Each run in two halves around pgbench (A B C pgbench C B A): the runs share one
            # centre in time, so a drift of the machine (a growing table, a busy neighbour)
            # weighs on every figure alike instead of on the last run only.
            runs: dict[str, list[Throughput]] = {name: [] for name in posts}
            half = seconds / 2
            for name in posts:
                progress(f"{LABELS[name]}: {workers} workers for {half:g} s (first half)")
                await checkpoint(server)
                runs[name].append(await drive(posts[name], f"{name}-1", workers, half))
            await checkpoint(server)
            progress(f"pgbench TPC-B: {workers} clients for {seconds} s")
            tps = await pgbench_tpcb(pgbench, server, clients=workers, seconds=seconds)
            for name in reversed(posts):
                progress(f"{LABELS[name]}: {workers} workers for {half:g} s (second half)")
                await checkpoint(server)
                runs[name].append(await drive(posts[name], f"{name}-2", workers, half))
            totals = {name: Throughput.total(halves) for name, halves in runs.items()}
            in_bare = {"bare-statement"}
            posted += sum(t.entries for n, t in totals.items() if n not in in_bare)
            posted += sum(count for n, count in warmed.items() if n not in in_bare)
            bare_posted = totals["bare-statement"].entries + warmed["bare-statement"]

            posted += await prepare_lot_members(database, partner_ids[0], progress)
            lots = await _lot_runs(pool, server, partner_ids, workers, progress)
            posted += sum(t.entries for t in lots.values())

            progress("checking the ledger's invariants")
            async with pool.acquire() as connection:
                violations = await store.invariant_violations(connection)
                in_database = int(await connection.fetchval("SELECT count(*) FROM entries"))
                in_bare_tables = await bare_entries(connection)
            if in_bare_tables != bare_posted:
                violations.append(
                    f"the bare statement posted {bare_posted} entries, its table holds "
                    f"{in_bare_tables}"
                )
        finally:
            if pool is not None:
                await pool.close()
            await database.dispose()
            await async_database.dispose()
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
        service_async=totals["service-async"],
        async_commit=async_commit,
        bare=totals["bare"],
        bare_statement=totals["bare-statement"],
        lot_redeems=lots,
        pgbench_tps=tps,
        entries_posted=posted,
        entries_in_database=in_database,
        invariant_violations=violations,
    )
