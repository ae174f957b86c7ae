"""The clearing benchmark's run: the month loaded once, the timed pass through the product's
``Clearing`` (close, settle, its netting, the workbooks) beside the references, and the traced
pass on a copy of the database."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import openpyxl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.bench.clearing.loading import (
    BENCH_DATABASE,
    PERIOD,
    TRACED_DATABASE,
    ZONE,
    LoadFigures,
    prepare,
)
from clearhouse.bench.clearing.measuring import (
    Measured,
    load_average,
    maxrss_bytes,
    measuring,
    median,
    memory_total_mib,
)
from clearhouse.bench.clearing.references import WorkbookFile, bare_workbook, raw_group_by
from clearhouse.bench.clearing.report import ClearingBenchReport, ScaleRun, Step
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
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.records import SealedPeriod
from clearhouse.services.clearing import Clearing, Settlement
from clearhouse.services.database import Database
from clearhouse.statements.documents import COALITION_PARTY
from clearhouse.statements.model import CoalitionStatement, PartnerStatement


async def _netting(clearing: Clearing) -> None:
    """What ``settle`` computes before it writes (the aggregates, the netting, its checks),
    through the product's own ``Clearing.net``."""
    netting = await clearing.net(PERIOD)
    if netting.problems:
        raise BenchError("the netting does not add up: " + "; ".join(netting.problems))


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")


@dataclass(slots=True)
class PassFigures:
    steps: dict[str, Measured] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    workbooks: list[WorkbookFile] = field(default_factory=list)
    bare: list[WorkbookFile] = field(default_factory=list)
    settlement: dict[str, object] = field(default_factory=dict)


async def run_pass(
    database: Database,
    server: Server,
    *,
    traced: bool,
    repeats: int,
    progress: Callable[[str], None],
    every_workbook: bool = True,
) -> PassFigures:
    """Close, settle, the netting and the GROUP BY alternately, the workbooks, the bare writer;
    traced: close, settle and the workbooks only, each under tracemalloc. Not
    ``every_workbook`` (a further entry count, for its memory): the coalition's workbook only,
    the largest, without the bare writer."""
    figures = PassFigures()
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
    assert isinstance(coalition, CoalitionStatement)
    roll = coalition.points_roll_forward
    figures.settlement = {
        "root": closed.root.hex(),
        "entry_count": closed.entry_count,
        "statements": len(settlement.statements),
        "multilateral_check": coalition.multilateral_check,
        "coalition_margin": coalition.coalition_margin,
        "roll_forward_closing": roll.closing,
        "member_balances_at_cut_off": roll.member_balances_at_cut_off,
        "nets": {
            s.party: body.net
            for s in settlement.statements
            if isinstance(body := s.body(), PartnerStatement)
        },
    }

    if not traced:
        await checkpoint(server)
        progress(f"netting's aggregate part and the raw GROUP BY, alternately, {repeats} times")
        netting: list[Measured] = []
        group_by: list[Measured] = []
        for _ in range(repeats):
            async with measuring(database, traced) as run:
                await _netting(clearing)
            netting.append(run)
            async with measuring(database, traced) as run:
                await raw_group_by(database, closed)
            group_by.append(run)
        figures.steps["netting"], figures.steps["group_by"] = median(netting), median(group_by)
        figures.runs["netting"] = [m.seconds for m in netting]
        figures.runs["group_by"] = [m.seconds for m in group_by]

    counts = await _rows_per_party(database, closed, settlement)
    if not every_workbook:
        counts = [(party, count) for party, count in counts if party == COALITION_PARTY]
    # Each workbook, then (timed pass) the bare writer's of as many rows, party by party: the
    # two figures are taken side by side, so a drift of a shared machine bears on both alike.
    progress(
        f"{len(counts)} workbooks through Clearing.write_workbook ({how})"
        + ("" if traced or not every_workbook else ", each followed by the bare writer's")
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
            if traced or not every_workbook:
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
    database: Database, closed: SealedPeriod, settlement: Settlement
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


async def _scale_run(
    server: Server,
    *,
    entries: int,
    members: int,
    partners: int,
    repeats: int,
    progress: Callable[[str], None],
) -> ScaleRun:
    """A further entry count in a database of its own: loaded, then close, settle, the netting
    beside the GROUP BY and the coalition's workbook, for their rates and the memory."""
    progress(f"{entries:,} entries: creating {BENCH_DATABASE} again")
    await recreate_database(server, BENCH_DATABASE)
    database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=2)
    try:
        load = await prepare(
            database, entries=entries, members=members, partners=partners, progress=progress
        )
        figures = await run_pass(
            database,
            server,
            traced=False,
            repeats=repeats,
            progress=progress,
            every_workbook=False,
        )
    finally:
        await database.dispose()
        await drop_database(server, BENCH_DATABASE)
    return ScaleRun(entries, load, figures.steps, figures.workbooks, maxrss_bytes())


async def run_clearing_bench(
    settings: Settings,
    *,
    entries: int,
    members: int,
    partners: int,
    repeats: int = 3,
    traced_pass: bool = True,
    larger: Sequence[int] = (),
    progress: Callable[[str], None] = lambda _: None,
    finished: Callable[[ClearingBenchReport], None] = lambda _: None,
) -> ClearingBenchReport:
    """Load a month, run the timed pass, then each ``larger`` entry count in a month of its own
    (``_scale_run``), then (unless told not to) the traced pass; drop it all. ``finished`` is
    given the report as it stands after the timed pass and after each further count."""
    server = Server.from_settings(settings)
    facts = await server_facts(server)
    load_at_start = load_average()
    traced: PassFigures | None = None
    scale: list[ScaleRun] = []
    try:
        progress(f"creating {BENCH_DATABASE} on {server.describe()}")
        await recreate_database(server, BENCH_DATABASE)
        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=2)
        try:
            load = await prepare(
                database, entries=entries, members=members, partners=partners, progress=progress
            )
        finally:
            await database.dispose()
        if traced_pass:
            progress(f"copying {BENCH_DATABASE} to {TRACED_DATABASE} for the traced pass")
            await copy_database(server, BENCH_DATABASE, TRACED_DATABASE)

        database = Database.for_url(server.sqlalchemy_url(BENCH_DATABASE), pool_size=2)
        try:
            timed = await run_pass(
                database, server, traced=False, repeats=repeats, progress=progress
            )
        finally:
            await database.dispose()
        process_peak = maxrss_bytes()
        await drop_database(server, BENCH_DATABASE)

        def report_now() -> ClearingBenchReport:
            return _report(
                server,
                facts,
                load_at_start,
                entries,
                members,
                partners,
                load,
                timed,
                traced,
                process_peak,
                scale,
            )

        finished(report_now())
        for count in larger:
            scale.append(
                await _scale_run(
                    server,
                    entries=count,
                    members=members,
                    partners=partners,
                    repeats=repeats,
                    progress=progress,
                )
            )
            finished(report_now())

        if traced_pass:
            database = Database.for_url(server.sqlalchemy_url(TRACED_DATABASE), pool_size=2)
            try:
                traced = await run_pass(database, server, traced=True, repeats=1, progress=progress)
            finally:
                await database.dispose()
    finally:
        progress(f"dropping {BENCH_DATABASE} and {TRACED_DATABASE}")
        await drop_database(server, BENCH_DATABASE)
        await drop_database(server, TRACED_DATABASE)
    return report_now()


def _report(
    server: Server,
    facts: dict[str, object],
    load_at_start: list[float],
    entries: int,
    members: int,
    partners: int,
    load: LoadFigures,
    timed: PassFigures,
    traced: PassFigures | None,
    process_peak: int,
    scale: list[ScaleRun],
) -> ClearingBenchReport:
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
        "load_average_at_end": load_average(),
        "memory_total_mib": memory_total_mib(),
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
        scale=list(scale),
    )
