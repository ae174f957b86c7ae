"""The ledger benchmark's figures: the runs, the ratios held to their bars, the JSON report and
the plain-text table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clearhouse.bench.ledger.coalition import (
    ISSUE_SHARE,
    LOT_MEMBERS,
    LOT_REDEEM_POINTS,
    LOT_SHAPES,
    MEMBERS,
    PARTNERS,
    POINTS_MAX,
    SEED_POINTS,
)
from clearhouse.bench.ledger.driving import Throughput
from clearhouse.bench.report import (
    Ratio,
    check_lines,
    headline,
    ratio,
    write_json,
)
from clearhouse.bench.servers import (
    PGBENCH_SCALE,
    pgbench_threads,
)

GOAL_ONE_PARTNER_OVER_SPREAD: Final = 0.90
GOAL_SPREAD_OVER_PGBENCH: Final = 0.50
AIM_SERVICE_OVER_BARE: Final = 0.70
GOAL_SERVICE_OVER_BARE_STATEMENT: Final = 0.70
ASYNC_LOSS_WAL_WRITER_DELAYS: Final = 3
"""With synchronous_commit off, a crash loses at most the commits of the last three
wal_writer_delay rounds (PostgreSQL's documentation, "Asynchronous Commit")."""


LABELS: Final = {
    "spread": "ledger service, spread",
    "one-partner": "ledger service, one partner",
    "service-async": "ledger service, async commit",
    "bare": "bare ledger_post (asyncpg)",
    "bare-statement": "bare statement (the limit)",
}


@dataclass(frozen=True, slots=True)
class AsyncCommit:
    """The async run's ``synchronous_commit`` as its connections showed it, and the server's
    ``wal_writer_delay``: what a crash may lose of what that run's callers saw committed."""

    synchronous_commit: str
    wal_writer_delay_ms: int

    @property
    def loss_window_ms(self) -> int:
        return ASYNC_LOSS_WAL_WRITER_DELAYS * self.wal_writer_delay_ms

    def as_json(self) -> dict[str, object]:
        return {
            "synchronous_commit": self.synchronous_commit,
            "wal_writer_delay_ms": self.wal_writer_delay_ms,
            "loss_window_ms": self.loss_window_ms,
            "how": "the service spread over all members, on connections of its own with "
            "synchronous_commit=off; a crash may lose the entries committed in the last "
            f"{ASYNC_LOSS_WAL_WRITER_DELAYS} x wal_writer_delay, never a part of one, and "
            "the product's default stays on",
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
    service_async: Throughput
    async_commit: AsyncCommit
    bare: Throughput
    bare_statement: Throughput
    """One plain statement per entry over trigger-free copies of the tables (``limit``)."""
    lot_redeems: dict[str, Throughput]
    """Bare redeems taking one lot (``one_lot``) or twenty (``twenty_lots``) each."""
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
                "service_over_bare_statement",
                "service (spread) / bare statement",
                ratio(spread, self.bare_statement.entries_per_s),
                GOAL_SERVICE_OVER_BARE_STATEMENT,
                binding=True,
            ),
            Ratio(
                "service_over_bare",
                "service (spread) / bare ledger_post",
                ratio(spread, self.bare.entries_per_s),
                AIM_SERVICE_OVER_BARE,
                binding=False,
            ),
        ]

    @property
    def figures(self) -> dict[str, float]:
        """Ratios for information, with no bar."""
        limit = self.bare_statement.entries_per_s
        return {
            "bare_ledger_post_over_bare_statement": ratio(self.bare.entries_per_s, limit),
            "bare_statement_over_pgbench": ratio(limit, self.pgbench_tps),
            "service_async_over_service": ratio(
                self.service_async.entries_per_s, self.spread.entries_per_s
            ),
            "service_async_over_bare_statement": ratio(self.service_async.entries_per_s, limit),
        }

    @property
    def lot_cost(self) -> dict[str, object]:
        """What taking twenty lots instead of one costs a redeem, at the bench's concurrency."""
        one, many = (self.lot_redeems[shape].entries_per_s for shape in LOT_SHAPES)
        extra = LOT_SHAPES["twenty_lots"] - LOT_SHAPES["one_lot"]
        extra_ms = (ratio(1, many) - ratio(1, one)) * 1000
        return {
            "how": f"bare ledger_post redeems of {LOT_REDEEM_POINTS} points, each member's "
            "whole balance, held in one lot or in twenty lots of 1 point; "
            f"{LOT_MEMBERS:,} members per shape loaded in bulk, each redeemed once, half of "
            "them in each of two runs (one, twenty, twenty, one)",
            "entries_per_s": {
                shape: round(self.lot_redeems[shape].entries_per_s, 1) for shape in LOT_SHAPES
            },
            "twenty_lots_over_one_lot": round(ratio(many, one), 3),
            "extra_ms_per_redeem": round(extra_ms, 3),
            "extra_ms_per_lot_taken": round(extra_ms / extra, 4),
            "runs": {shape: self.lot_redeems[shape].as_json() for shape in LOT_SHAPES},
        }

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
                "service_async": round(self.service_async.entries_per_s, 1),
                "bare": round(self.bare.entries_per_s, 1),
                "bare_statement": round(self.bare_statement.entries_per_s, 1),
            },
            "service_async": self.async_commit.as_json(),
            "pgbench_tps": round(self.pgbench_tps, 1),
            "pgbench": {
                "mode": "built-in TPC-B",
                "scale": PGBENCH_SCALE,
                "clients": self.workers,
                "threads": pgbench_threads(self.workers),
            },
            "ratios": {r.name: r.as_json() for r in self.ratios},
            "figures": {name: round(value, 3) for name, value in self.figures.items()},
            "lot_cost": self.lot_cost,
            "runs": {
                "seed": self.seed.as_json(),
                "spread": self.spread.as_json(),
                "one_partner": self.one_partner.as_json(),
                "service_async": self.service_async.as_json(),
                "bare": self.bare.as_json(),
                "bare_statement": self.bare_statement.as_json(),
            },
            "checks": {
                "entries_posted": self.entries_posted,
                "entries_in_database": self.entries_in_database,
                "invariant_violations": self.invariant_violations,
            },
        }


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
        (LABELS["spread"], report.spread),
        (LABELS["one-partner"], report.one_partner),
        (LABELS["service-async"], report.service_async),
        (LABELS["bare"], report.bare),
        (LABELS["bare-statement"], report.bare_statement),
    ]
    for label, run in rows:
        lines.append(f"  {label:<34}{run.entries_per_s:>12,.1f}{run.entries:>11,}{run.refused:>9,}")
    lines.append(f"  {'pgbench TPC-B (tps)':<34}{report.pgbench_tps:>12,.1f}")
    for shape, lots in LOT_SHAPES.items():
        run = report.lot_redeems[shape]
        label = f"bare redeem taking {lots} lot{'s' if lots > 1 else ''}"
        lines.append(f"  {label:<34}{run.entries_per_s:>12,.1f}{run.entries:>11,}{run.refused:>9,}")
    lines += ["", f"  {'ratio':<34}{'value':>12}   bar"]
    lines += [r.line() for r in report.ratios]
    for name, value in report.figures.items():
        lines.append(f"  {name.replace('_', ' '):<34}{value:>12.2f}   (for information)")
    lines.append(
        f"  async commit: synchronous_commit={report.async_commit.synchronous_commit} on its own "
        f"connections; a crash may lose up to {report.async_commit.loss_window_ms} ms of commits"
    )
    cost = report.lot_cost
    lines.append(
        f"  {'twenty lots / one lot':<34}{cost['twenty_lots_over_one_lot']:>12.2f}   "
        f"(for information: {cost['extra_ms_per_redeem']} ms more per redeem)"
    )
    lines.append("")
    lines += check_lines(
        report.invariant_violations, report.entries_posted, report.entries_in_database
    )
    return "\n".join(lines)
