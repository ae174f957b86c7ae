"""The expiry benchmark's run: the lots loaded once, then the raw statement, the product's
``Expiry.run`` and the raw statement again, each on a fresh copy of the loaded database and each
checked afterwards; everything dropped at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final

from clearhouse.bench.clearing.measuring import (
    load_average,
    maxrss_bytes,
    measuring,
    memory_total_mib,
)
from clearhouse.bench.expiry.loading import (
    BENCH_DATABASE,
    RUN_DATABASE,
    ZONE,
    LoadFigures,
    prepare,
)
from clearhouse.bench.expiry.reference import raw_expiry
from clearhouse.bench.expiry.report import ORDER, ExpiryBenchReport, ExpiryPass
from clearhouse.bench.report import machine_facts, timestamp
from clearhouse.bench.servers import (
    BenchError,
    Server,
    checkpoint,
    copy_database,
    drop_database,
    recreate_database,
    server_facts,
)
from clearhouse.config import Settings
from clearhouse.services.composition import Services
from clearhouse.services.database import Database
from clearhouse.services.expiry import BATCH_MEMBERS, Expiry, ExpiryRun
from clearhouse.storage import ledger as ledger_store

_LEFT: Final = """
SELECT (SELECT count(*) FROM lots WHERE remaining > 0) AS lots_left,
       (SELECT count(*) FROM lot_consumptions) AS consumptions,
       (SELECT count(*) FROM entries WHERE kind = 'expiry') AS entries,
       (SELECT count(DISTINCT member_id) FROM entries WHERE kind = 'expiry') AS members,
       (SELECT coalesce(sum(points), 0) FROM entries WHERE kind = 'expiry') AS points
"""


def product_expiry(settings: Settings, database: Database) -> Expiry:
    """The expiry service as ``clearhouse expiry run`` and ``serve`` compose it (its reminders
    included), in the bench's time zone."""
    return Services(replace(settings, timezone=ZONE), database).expiry


async def _checks(database: Database) -> dict[str, object]:
    """What the run left: lots with points, consumptions, expiry entries, the invariants."""
    async with database.driver_connection() as connection:
        row = await connection.fetchrow(_LEFT)
        violations = await ledger_store.invariant_violations(connection)
    return {
        "members_expired": int(row["members"]),
        "expiry_entries": int(row["entries"]),
        "lot_consumptions": int(row["consumptions"]),
        "points_expired": int(row["points"]),
        "lots_left_with_points": int(row["lots_left"]),
        "invariant_violations": violations,
    }


def _refusals(name: str, checks: dict[str, object], load: LoadFigures, members: int) -> list[str]:
    """How the run fell short of expiring every lot once, as sentences (none: it did)."""
    expected: dict[str, object] = {
        "members_expired": members,
        "expiry_entries": members,
        "lot_consumptions": load.lots,
        "points_expired": load.points,
        "lots_left_with_points": 0,
        "invariant_violations": [],
    }
    return [
        f"{name}: {key} is {checks[key]!r}, not {value!r}"
        for key, value in expected.items()
        if checks[key] != value
    ]


async def _one_run(
    settings: Settings,
    server: Server,
    name: str,
    load: LoadFigures,
    members: int,
    progress: Callable[[str], None],
) -> ExpiryPass:
    progress(f"{name}: copying {BENCH_DATABASE} to {RUN_DATABASE}; CHECKPOINT")
    await copy_database(server, BENCH_DATABASE, RUN_DATABASE)
    await checkpoint(server)
    database = Database.for_url(server.sqlalchemy_url(RUN_DATABASE), pool_size=2)
    done: ExpiryRun | None = None
    try:
        progress(f"{name}: expiring {load.lots:,} lots of {members:,} members")
        async with measuring(database, traced=False) as measured:
            if name == "product":
                done = await product_expiry(settings, database).run()
            else:
                await raw_expiry(database)
        progress(f"{name}: checking every lot and the ledger's invariants")
        checks = await _checks(database)
    finally:
        await database.dispose()
    await drop_database(server, RUN_DATABASE)
    problems = _refusals(name, checks, load, members)
    if done is not None and (done.members, done.entries, done.points) != (
        members,
        members,
        load.points,
    ):
        problems.append(f"{name}: Expiry.run says it did {done}")
    if problems:
        raise BenchError("the expiry did not expire every lot once: " + "; ".join(problems))
    return ExpiryPass(measured, checks, done)


async def run_expiry_bench(
    settings: Settings,
    *,
    lots: int,
    members: int,
    progress: Callable[[str], None] = lambda _: None,
) -> ExpiryBenchReport:
    """Load the lots, run the raw statement, the product and the raw statement; drop it all."""
    if lots < members:
        raise BenchError(f"{lots:,} lots cannot give each of {members:,} members one")
    server = Server.from_settings(settings)
    facts = await server_facts(server)
    load_at_start = load_average()
    try:
        progress(f"creating {BENCH_DATABASE} on {server.describe()}")
        await recreate_database(server, BENCH_DATABASE)
        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=2)
        try:
            load = await prepare(database, lots=lots, members=members, progress=progress)
        finally:
            await database.dispose()
        if load.invariant_violations:
            raise BenchError(
                "the load broke the ledger's invariants: " + "; ".join(load.invariant_violations)
            )
        runs = {
            name: await _one_run(settings, server, name, load, members, progress) for name in ORDER
        }
        process_peak = maxrss_bytes()
    finally:
        progress(f"dropping {BENCH_DATABASE} and {RUN_DATABASE}")
        await drop_database(server, RUN_DATABASE)
        await drop_database(server, BENCH_DATABASE)

    machine = machine_facts(server, facts) | {
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "memory_total_mib": memory_total_mib(),
    }
    return ExpiryBenchReport(
        timestamp=timestamp(),
        machine=machine,
        lots=lots,
        members=members,
        batch_members=BATCH_MEMBERS,
        load=load,
        runs=runs,
        process_peak_rss=process_peak,
    )
