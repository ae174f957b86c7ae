"""The ledger benchmark's run: the bench databases made, every shape and both references run in
halves around pgbench, the invariants checked, everything dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

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
from clearhouse.bench.ledger.posting import bare_post, bare_redeem, service_post
from clearhouse.bench.ledger.report import LABELS, LedgerBenchReport
from clearhouse.bench.report import (
    machine_facts,
    timestamp,
)
from clearhouse.bench.servers import (
    PGBENCH_DATABASE,
    PGBENCH_SCALE,
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
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store


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
                "bare": bare_post(pool, partner_ids, member_ids),
            }
            for name, post in posts.items():
                posted += (await drive(post, f"{name}-warmup", workers, WARMUP_SECONDS)).entries

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
            posted += sum(t.entries for t in totals.values())

            posted += await prepare_lot_members(database, partner_ids[0], progress)
            lots = await _lot_runs(pool, server, partner_ids, workers, progress)
            posted += sum(t.entries for t in lots.values())

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
        lot_redeems=lots,
        pgbench_tps=tps,
        entries_posted=posted,
        entries_in_database=in_database,
        invariant_violations=violations,
    )
