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


LABELS: Final = {
    "spread": "ledger service, spread",
    "one-partner": "ledger service, one partner",
    "bare": "bare ledger_post (asyncpg)",
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
                "service_over_bare",
                "service (spread) / bare",
                ratio(spread, self.bare.entries_per_s),
                AIM_SERVICE_OVER_BARE,
                binding=False,
            ),
        ]

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
            "lot_cost": self.lot_cost,
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
        (LABELS["bare"], report.bare),
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
