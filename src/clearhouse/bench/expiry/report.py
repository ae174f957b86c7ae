"""The expiry benchmark's figures: each run, the goal the product is held to against the raw
statement, the JSON report and the plain-text table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clearhouse.bench.clearing.measuring import RSS_SAMPLE_S, Measured, mib
from clearhouse.bench.expiry.loading import (
    EXPIRY_AT,
    ISSUED_FROM,
    ISSUED_OVER,
    LOT_LIFETIME,
    ZONE,
    LoadFigures,
)
from clearhouse.bench.report import AtMost, headline, ratio, write_json
from clearhouse.services.expiry import ExpiryRun

GOAL_PRODUCT_OVER_RAW: Final = 2.0
ORDER: Final = ("raw_1", "product", "raw_2")
LABELS: Final = {
    "raw_1": "raw statement (reference), first",
    "product": "Expiry.run (the product)",
    "raw_2": "raw statement (reference), second",
}


@dataclass(frozen=True, slots=True)
class ExpiryPass:
    """One run of the expiry on its own copy of the loaded database, and what it left."""

    measured: Measured
    checks: dict[str, object]
    expiry_run: ExpiryRun | None = None
    """What the product's run said it did (the product's run only)."""


@dataclass(frozen=True, slots=True)
class ExpiryBenchReport:
    timestamp: str
    machine: dict[str, object]
    lots: int
    members: int
    batch_members: int
    load: LoadFigures
    runs: dict[str, ExpiryPass]
    process_peak_rss: int

    @property
    def raw_seconds(self) -> float:
        """The reference's seconds: the mean of its runs before and after the product's."""
        raw = [self.runs[name].measured.seconds for name in ("raw_1", "raw_2")]
        return sum(raw) / len(raw)

    @property
    def goals(self) -> list[AtMost]:
        return [
            AtMost(
                "product_over_raw",
                "Expiry.run / raw statement",
                ratio(self.runs["product"].measured.seconds, self.raw_seconds),
                GOAL_PRODUCT_OVER_RAW,
                "seconds of the product's whole run (batches of members through "
                "expiry_run_batch) over the mean seconds of the raw statement's two runs, one "
                "before and one after it, each on a fresh copy of the same loaded database",
            )
        ]

    def _run_json(self, run: ExpiryPass) -> dict[str, object]:
        measured = run.measured
        data: dict[str, object] = {
            "seconds": round(measured.seconds, 3),
            "lots_per_s": round(ratio(self.lots, measured.seconds), 1),
            "members_per_s": round(ratio(self.members, measured.seconds), 1),
            "cpu_seconds": {
                "this_process": round(measured.cpu_s, 3),
                "postgresql_backends": round(measured.postgres_cpu_s, 3),
            },
            "rss_peak_mib": mib(measured.rss_peak),
            "ru_maxrss_after_mib": mib(measured.maxrss_after),
            "checks": run.checks,
        }
        if run.expiry_run is not None:
            done = run.expiry_run
            data["expiry_run"] = {
                "holds_expired": done.holds_expired,
                "members": done.members,
                "entries": done.entries,
                "points": done.points,
                "reminders": done.reminders,
            }
        return data

    def as_json(self) -> dict[str, object]:
        load = self.load
        return {
            "benchmark": "clearhouse bench expiry",
            "timestamp": self.timestamp,
            "machine": self.machine,
            "parameters": {
                "lots": self.lots,
                "members": self.members,
                "batch_members": self.batch_members,
                "zone": ZONE.key,
                "issued_from": ISSUED_FROM.isoformat(),
                "issued_over_days": ISSUED_OVER.days,
                "lot_lifetime_days": LOT_LIFETIME.days,
                "expiry_run_at": EXPIRY_AT.isoformat(),
            },
            "load": {
                "seconds": round(load.seconds, 3),
                "lots_per_s": round(ratio(load.lots, load.seconds), 1),
                "how": "set-based INSERT ... SELECT generate_series in one transaction: per lot "
                "an issue entry, its two postings and the lot; the members' balances; triggers "
                "and foreign keys on (the deferred balance and lot checks ran at commit); then "
                "VACUUM ANALYZE",
                "vacuum_analyze_seconds": round(load.vacuum_analyze_s, 3),
                "lots": load.lots,
                "points": load.points,
                "database_bytes": load.database_bytes,
            },
            "order": "raw, product, raw: each run on a fresh file copy of the loaded database, "
            "made just before it and after a CHECKPOINT, so every run starts from the same "
            "rows and a drift of the machine bears on the reference on both sides",
            "runs": {name: self._run_json(self.runs[name]) for name in ORDER},
            "raw_mean_seconds": round(self.raw_seconds, 3),
            "goals": {g.name: g.as_json() for g in self.goals},
            "memory": {
                "process_peak_rss_mib": mib(self.process_peak_rss),
                "how": "rss_peak_mib: the highest resident set of this process during the run, "
                f"sampled every {RSS_SAMPLE_S * 1000:g} ms from /proc/self/statm; "
                "process_peak_rss_mib: ru_maxrss at the end, the high-water mark of the whole "
                "process, load included. PostgreSQL's memory is in neither.",
            },
            "checks": {"invariant_violations_after_load": load.invariant_violations},
        }


def write_report(report: ExpiryBenchReport, path: Path) -> None:
    write_json(report.as_json(), path)


def render(report: ExpiryBenchReport) -> str:
    """The figures as a plain-text table."""
    load = report.load
    lines = [
        headline(
            "clearhouse bench expiry",
            f"{report.lots:,} lots, {report.members:,} members, "
            f"batches of {report.batch_members:,} members",
            report.machine,
        ),
        "",
        f"  bulk load: {load.lots:,} lots ({load.points:,} points) in {load.seconds:,.1f} s "
        f"({ratio(load.lots, load.seconds):,.0f} lots/s, triggers on); "
        f"VACUUM ANALYZE {load.vacuum_analyze_s:,.1f} s",
        "",
        f"  {'run (in this order)':<36}{'seconds':>9}{'lots/s':>11}{'members/s':>11}"
        f"{'CPU here':>9}{'CPU pg':>8}{'RSS peak':>9}",
        f"  {'':<36}{'':>9}{'':>11}{'':>11}{'s':>9}{'s':>8}{'MiB':>9}",
    ]
    for name in ORDER:
        m = report.runs[name].measured
        lines.append(
            f"  {LABELS[name]:<36}{m.seconds:>9,.2f}{ratio(report.lots, m.seconds):>11,.0f}"
            f"{ratio(report.members, m.seconds):>11,.0f}{m.cpu_s:>9,.1f}"
            f"{m.postgres_cpu_s:>8,.1f}{mib(m.rss_peak):>9,.1f}"
        )
    lines += ["", f"  {'ratio':<42}{'value':>10}   bar"]
    lines += [g.line() for g in report.goals]
    lines += [
        f"  peak memory of the process: {mib(report.process_peak_rss):,.1f} MiB (ru_maxrss)",
        "",
    ]
    broken = [
        name
        for name, run in report.runs.items()
        if run.checks.get("lots_left_with_points") != 0 or run.checks.get("invariant_violations")
    ]
    if load.invariant_violations or broken:
        lines.append("  CHECKS FAILED: " + ", ".join(broken or ["after the load"]))
    else:
        lines.append("  after every run: every lot expired, ledger invariants hold")
    return "\n".join(lines)
