"""The clearing benchmark's figures: each step, the goals it is held to, the JSON report and
the plain-text table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from clearhouse.bench.clearing.loading import PERIOD, SECOND_VERSION_FROM, ZONE, LoadFigures
from clearhouse.bench.clearing.measuring import MIB, RSS_SAMPLE_S, Measured, mib
from clearhouse.bench.clearing.references import WorkbookFile
from clearhouse.bench.report import AtMost, headline, ratio, write_json

GOAL_NETTING_OVER_GROUP_BY: Final = 1.2
GOAL_WORKBOOKS_OVER_BARE: Final = 1.2
GOAL_CLOSE_ENTRIES_PER_S: Final = 100_000.0
GOAL_PEAK_MIB: Final = 300.0
GOAL_PEAK_GROWTH: Final = 1.2
"""Flat memory: the peak at the largest entry count over the peak at the first, at most."""


@dataclass(frozen=True, slots=True)
class AtLeast:
    """A rate held to at least ``bar``."""

    name: str
    label: str
    value: float
    bar: float
    what: str

    @property
    def met(self) -> bool:
        return self.value >= self.bar

    def as_json(self) -> dict[str, object]:
        return {
            "value": round(self.value, 1),
            "goal_at_least": self.bar,
            "met": self.met,
            "what": self.what,
        }

    def line(self, unit: str = "") -> str:
        verdict = "met" if self.met else "NOT met"
        return f"  {self.label:<42}{self.value:>10,.0f}   goal >= {self.bar:,g}{unit}: {verdict}"


@dataclass(frozen=True, slots=True)
class ScaleRun:
    """A further entry count, in a month of its own: close, settle, the netting beside the
    GROUP BY, and the coalition's workbook (every entry), for their rates and the memory."""

    entries: int
    load: LoadFigures
    steps: dict[str, Measured]
    workbooks: list[WorkbookFile]
    process_peak_rss: int
    """``ru_maxrss`` at the end of this count's pass (the process's high-water mark so far)."""

    def rate(self, name: str) -> float:
        rows = self.entries if name != "workbooks" else sum(w.rows for w in self.workbooks)
        return ratio(rows, self.steps[name].seconds)

    def as_json(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "load_seconds": round(self.load.seconds, 3),
            "steps": {
                name: {
                    "seconds": round(m.seconds, 3),
                    "rows_per_s": round(self.rate(name), 1),
                    "cpu_seconds": {
                        "this_process": round(m.cpu_s, 3),
                        "postgresql_backends": round(m.postgres_cpu_s, 3),
                    },
                    "rss_peak_mib": mib(m.rss_peak),
                    "ru_maxrss_after_mib": mib(m.maxrss_after),
                }
                for name, m in self.steps.items()
            },
            "netting_over_group_by": round(
                ratio(self.steps["netting"].seconds, self.steps["group_by"].seconds), 3
            ),
            "workbooks": [
                {"party": w.party, "rows": w.rows, "bytes": w.size_bytes} for w in self.workbooks
            ],
            "process_peak_rss_mib": mib(self.process_peak_rss),
        }


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
            "rss_peak_mib": mib(self.timed.rss_peak),
            "rss_before_mib": mib(self.timed.rss_before),
            "ru_maxrss_after_mib": mib(self.timed.maxrss_after),
        }
        if self.runs_s:
            data["runs_seconds"] = [round(s, 3) for s in self.runs_s]
        if self.traced is not None:
            data["tracemalloc_peak_mib"] = mib(self.traced.heap_peak or 0)
            data["traced_pass_seconds"] = round(self.traced.seconds, 3)
        return data


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
    scale: list[ScaleRun] = field(default_factory=list)
    """The further entry counts, in the order they ran (the largest last)."""

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
                "settle's aggregate part (Clearing.net): period_aggregates + points_roll_forward "
                "+ the breakage cohorts sealed at close + the pure netting and checks, median of "
                "the runs, over the raw GROUP BY's median",
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
    def rate_goals(self) -> list[AtLeast]:
        close = [self.steps["close"].rows_per_s, *(r.rate("close") for r in self.scale)]
        return [
            AtLeast(
                "close_entries_per_s",
                "close: entries hashed per second",
                min(close),
                GOAL_CLOSE_ENTRIES_PER_S,
                "Clearing.close: the canonical entries streamed, encoded and hashed into the "
                "ledger root, per second; the lowest of the entry counts run",
            )
        ]

    @property
    def scale_goals(self) -> list[AtMost]:
        if not self.scale:
            return []
        largest = self.scale[-1]
        return [
            AtMost(
                "peak_rss_mib_at_largest",
                f"peak memory at {largest.entries:,} entries (MiB)",
                largest.process_peak_rss / MIB,
                GOAL_PEAK_MIB,
                "ru_maxrss at the end of the largest count's pass: the whole process so far",
                strict=True,
            ),
            AtMost(
                "peak_growth",
                f"peak memory, {largest.entries:,} / {self.entries:,} entries",
                ratio(largest.process_peak_rss, self.process_peak_rss),
                GOAL_PEAK_GROWTH,
                "the largest count's ru_maxrss over the first count's: flat memory",
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
            "goals": {g.name: g.as_json() for g in [*self.goals, *self.scale_goals]}
            | {g.name: g.as_json() for g in self.rate_goals},
            "at_further_entry_counts": [run.as_json() for run in self.scale],
            "ratios_for_information": {
                name: round(value, 3) for name, _, value in self.informative
            },
            "memory": {
                "process_peak_rss_mib": mib(self.process_peak_rss),
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
    lines += [g.line("/s") for g in report.rate_goals]
    lines += [g.line(" MiB" if g.strict else "") for g in report.scale_goals]
    lines += [
        f"  {label:<42}{value:>10.2f}   (for information)" for _, label, value in report.informative
    ]
    for run in report.scale:
        lines += [
            "",
            f"  at {run.entries:,} entries (loaded in {run.load.seconds:,.0f} s; the coalition's "
            f"workbook only): peak memory {run.process_peak_rss / MIB:,.1f} MiB",
        ]
        lines += [
            f"  {name:<34}{m.seconds:>9,.2f}{run.rate(name):>11,.0f}{'':>11}{m.cpu_s:>9,.1f}"
            f"{m.postgres_cpu_s:>8,.1f}{m.rss_peak / MIB:>9,.1f}{m.maxrss_after / MIB:>8,.1f}"
            for name, m in run.steps.items()
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
