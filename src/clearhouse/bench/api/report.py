"""The API benchmark's figures: the runs, the goals and the ratios, the CPU each party took, the
JSON report and the plain-text table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clearhouse.bench.api.traffic import ApiRun
from clearhouse.bench.api.wrk import WrkRun
from clearhouse.bench.cpu import CpuUse
from clearhouse.bench.ledger import (
    ISSUE_SHARE,
    MEMBERS,
    PARTNERS,
    POINTS_MAX,
    SEED_POINTS,
    Throughput,
)
from clearhouse.bench.report import AtMost, Ratio, headline, ratio, write_json
from clearhouse.bench.servers import PGBENCH_SCALE, pgbench_threads

GOAL_API_OVER_PGBENCH: Final = 0.35
GOAL_P99_MS: Final = 20.0
GOAL_SERVER_CPU_MS: Final = 1.0
GOAL_BATCH_OVER_SINGLE: Final = 10.0

SAME_MACHINE_NOTE: Final = (
    "Every load generator runs on the same machine as the server's workers and PostgreSQL. "
    "wrk replays requests signed beforehand by the partner client's code (each its own nonce "
    "and Idempotency-Key, signed just before its run), so it spends little CPU; its own CPU is "
    "reported beside the server's. The Python client run (AsyncPartnerClient: signing, HTTP, "
    "receipt checks in this process) is what a Python partner sees."
)
LOAD_GENERATORS: Final = {
    "wrk": "wrk (Debian), the pre-signed requests replayed by a Lua script; load_generator is "
    "wrk's CPU and this process's (waiting)",
    "python_client": "this process: clearhouse_client.AsyncPartnerClient over httpx, one per "
    "partner, pinned coalition key",
    "ledger_service": "this process posting through the ledger service (no HTTP, no "
    "signatures); the server is idle then",
}


@dataclass(frozen=True, slots=True)
class ApiBenchPlan:
    """How the run was set up: connections and tasks of each run, seconds."""

    connections: int
    latency_connections: int
    batch_connections: int
    batch_sizes: list[int]
    concurrency: int
    workers: int
    seconds: int


@dataclass(frozen=True, slots=True)
class ApiBenchReport:
    timestamp: str
    machine: dict[str, object]
    settings: ApiBenchPlan
    server: dict[str, object]
    seed: Throughput
    wrk_throughput: WrkRun
    wrk_latency: WrkRun | None
    python_client: ApiRun
    python_halves: list[ApiRun]
    service: Throughput
    pgbench_tps: float
    batches: Mapping[int, WrkRun]
    batch_available: bool
    cpu: Mapping[str, CpuUse]
    entries_counted: int
    entries_unanswered_at_most: int
    entries_in_database: int
    invariant_violations: list[str]
    load_average_1m: tuple[float, float] = (0.0, 0.0)
    """The machine's load average over a minute when the runs began and when they ended."""

    @property
    def accepted_per_s(self) -> float:
        return self.wrk_throughput.entries_per_s

    def server_cpu_ms(self) -> float:
        per = self.cpu.get("wrk_throughput", CpuUse()).ms_per_request(self.wrk_throughput.entries)
        return per.get("server_workers", 0.0)

    def p99_ms(self) -> float:
        return self.wrk_latency.latency_ms["p99"] if self.wrk_latency else 0.0

    @property
    def goals(self) -> list[Ratio | AtMost]:
        goals: list[Ratio | AtMost] = [
            Ratio(
                "api_over_pgbench",
                "signed API (wrk) / pgbench TPC-B",
                ratio(self.accepted_per_s, self.pgbench_tps),
                GOAL_API_OVER_PGBENCH,
                binding=True,
            ),
            AtMost(
                "p99_ms_at_latency_connections",
                f"p99 at {self.settings.latency_connections} connections (ms)",
                self.p99_ms(),
                GOAL_P99_MS,
                "ms, as wrk measured it at latency_connections",
            ),
            AtMost(
                "server_cpu_ms_per_request",
                "server CPU per request, PostgreSQL excluded (ms)",
                self.server_cpu_ms(),
                GOAL_SERVER_CPU_MS,
                "ms of the serve process and its workers per accepted request",
            ),
        ]
        for size, run in sorted(self.batches.items()):
            goals.append(
                Ratio(
                    f"batch_{size}_over_single",
                    f"batches of {size:,} / single requests",
                    ratio(run.posted_per_s, self.accepted_per_s),
                    GOAL_BATCH_OVER_SINGLE,
                    binding=True,
                )
            )
        return goals

    def cpu_json(self, name: str, count: int, per: str) -> dict[str, object]:
        use = self.cpu.get(name, CpuUse())
        data = use.as_json(count)
        return {"per": per, **data}

    def checks_hold(self) -> bool:
        low, high = self.entries_counted, self.entries_counted + self.entries_unanswered_at_most
        return not self.invariant_violations and low <= self.entries_in_database <= high

    def as_json(self) -> dict[str, object]:
        plan = self.settings
        wrk = self.wrk_throughput
        wrk_cpu = self.cpu.get("wrk_throughput", CpuUse())
        python_cpu = self.cpu.get("python_client", CpuUse())
        batch: dict[str, object] = {
            "available": self.batch_available,
            "connections": plan.batch_connections,
        }
        if self.batch_available:
            batch["note"] = (
                "entries_per_s: entries the ledger recorded while wrk ran (recorded_at), "
                "answered or not, since a batch's answer comes late; answered_entries_per_s: "
                "201 results in the answers wrk received before its time was up"
            )
        else:
            batch["note"] = "the server served no POST /v1/transactions/batch: not measured"
        for size, run in sorted(self.batches.items()):
            batch[str(size)] = {
                "entries_per_s": round(run.posted_per_s, 1),
                "answered_entries_per_s": round(run.entries_per_s, 1),
                "batches_answered_per_s": round(run.requests_per_s, 2),
                "over_single": round(ratio(run.posted_per_s, self.accepted_per_s), 2),
                "cpu_ms_per_entry": {
                    k: round(v, 3)
                    for k, v in self.cpu.get(f"batch_{size}", CpuUse())
                    .ms_per_request(run.posted)
                    .items()
                },
                "latency_ms": {k: round(v, 1) for k, v in run.latency_ms.items()},
            }
        runs: dict[str, object] = {
            "seed": self.seed.as_json(),
            "wrk_throughput": wrk.as_json(),
            "python_client": self.python_client.as_json(),
            "python_client_halves": [half.as_json() for half in self.python_halves],
            "ledger_service": self.service.as_json(),
        }
        if self.wrk_latency is not None:
            runs["wrk_latency"] = self.wrk_latency.as_json()
        for size, run in sorted(self.batches.items()):
            runs[f"batch_{size}"] = run.as_json()
        cpu: dict[str, object] = {
            "wrk_throughput": self.cpu_json("wrk_throughput", wrk.entries, "accepted request"),
            "python_client": self.cpu_json(
                "python_client", self.python_client.accepted, "accepted request"
            ),
            "ledger_service": self.cpu_json("ledger_service", self.service.entries, "entry"),
        }
        if self.wrk_latency is not None:
            cpu["wrk_latency"] = self.cpu_json(
                "wrk_latency", self.wrk_latency.entries, "accepted request"
            )
        for size, run in sorted(self.batches.items()):
            cpu[f"batch_{size}"] = self.cpu_json(f"batch_{size}", run.posted, "entry")
        latency = self.wrk_latency.latency_ms if self.wrk_latency else {}
        return {
            "benchmark": "clearhouse bench api",
            "timestamp": self.timestamp,
            "machine": self.machine,
            "load_average_1m": {
                "before_the_runs": round(self.load_average_1m[0], 2),
                "after_the_runs": round(self.load_average_1m[1], 2),
            },
            "load_generator_on_same_machine": True,
            "note": SAME_MACHINE_NOTE,
            "settings": {
                "seconds": plan.seconds,
                "connections": plan.connections,
                "latency_connections": plan.latency_connections,
                "batch_connections": plan.batch_connections,
                "batch_sizes": plan.batch_sizes,
                "python_client_tasks": plan.concurrency,
                "service_workers_and_pgbench_clients": plan.workers,
                "server": self.server,
                "load_generators": LOAD_GENERATORS,
                "members": MEMBERS,
                "partners": PARTNERS,
                "mix": {
                    "issue_share": ISSUE_SHARE,
                    "points_per_entry": [1, POINTS_MAX],
                    "seed_points_per_member": SEED_POINTS,
                },
                "order": "calibration; wrk, Python client, service, pgbench, service, Python "
                "client, wrk (halves around pgbench); wrk at latency_connections; batches",
            },
            "api": {
                "accepted_per_s": round(self.accepted_per_s, 1),
                "connections": plan.connections,
                "latency_ms": {k: round(v, 2) for k, v in latency.items()},
                "latency_connections": plan.latency_connections,
                "cpu_ms_per_accepted_request": {
                    **{k: round(v, 3) for k, v in wrk_cpu.ms_per_request(wrk.entries).items()},
                    "wrk": round(wrk.cpu_s / wrk.entries * 1e3, 3) if wrk.entries else 0.0,
                },
                "cores_busy": {k: round(v, 2) for k, v in wrk_cpu.cores().items()},
            },
            "python_client": {
                "accepted_per_s": round(self.python_client.accepted_per_s, 1),
                "tasks": plan.concurrency,
                "latency_ms": {k: round(v, 2) for k, v in self.python_client.latency_ms().items()},
                "cpu_ms_per_accepted_request": {
                    k: round(v, 3)
                    for k, v in python_cpu.ms_per_request(self.python_client.accepted).items()
                },
                "cores_busy": {k: round(v, 2) for k, v in python_cpu.cores().items()},
            },
            "batch": batch,
            "ledger_service_entries_per_s": round(self.service.entries_per_s, 1),
            "pgbench_tps": round(self.pgbench_tps, 1),
            "pgbench": {
                "mode": "built-in TPC-B",
                "scale": PGBENCH_SCALE,
                "clients": plan.workers,
                "threads": pgbench_threads(plan.workers),
            },
            "goals": {goal.name: goal.as_json() for goal in self.goals},
            "ratios": {
                "python_client_over_pgbench": round(
                    ratio(self.python_client.accepted_per_s, self.pgbench_tps), 3
                ),
                "api_over_service": round(
                    ratio(self.accepted_per_s, self.service.entries_per_s), 3
                ),
                "python_client_over_api": round(
                    ratio(self.python_client.accepted_per_s, self.accepted_per_s), 3
                ),
            },
            "cpu": cpu,
            "runs": runs,
            "checks": {
                "entries_counted": self.entries_counted,
                "entries_unanswered_at_most": self.entries_unanswered_at_most,
                "entries_in_database": self.entries_in_database,
                "invariant_violations": self.invariant_violations,
                "hold": self.checks_hold(),
            },
        }


def write_report(report: ApiBenchReport, path: Path) -> None:
    write_json(report.as_json(), path)


def _cpu_line(label: str, use: CpuUse, count: int, per: str) -> str:
    ms, cores = use.ms_per_request(count), use.cores()
    if not ms or not cores:
        return f"  {label}: no CPU figures"
    return (
        f"  {label}: per {per} load generator {ms['load_generator']:.2f}, "
        f"server workers {ms['server_workers']:.2f}, "
        f"PostgreSQL backends {ms['postgresql_backends']:.2f} ms; cores busy: "
        f"generator {cores['load_generator']:.2f}, server {cores['server_workers']:.2f}, "
        f"PostgreSQL {cores['postgresql_backends']:.2f}, other {cores['other']:.2f}"
    )


def render(report: ApiBenchReport) -> str:
    """The figures as a plain-text table."""
    plan = report.settings
    wrk = report.wrk_throughput
    python = report.python_client
    lines = [
        headline(
            "clearhouse bench api",
            f"wrk at {plan.connections} and {plan.latency_connections} connections, "
            f"{plan.concurrency} Python client tasks, {plan.seconds} s per run",
            report.machine,
        ),
        "",
        f"  {'run':<44}{'per second':>12}{'accepted':>11}{'statuses':>30}",
        f"  {'signed API, wrk, ' + str(plan.connections) + ' connections':<44}"
        f"{wrk.entries_per_s:>12,.1f}{wrk.entries:>11,}{_statuses(wrk):>30}",
    ]
    if report.wrk_latency is not None:
        run = report.wrk_latency
        lines.append(
            f"  {'signed API, wrk, ' + str(run.connections) + ' connections':<44}"
            f"{run.entries_per_s:>12,.1f}{run.entries:>11,}{_statuses(run):>30}"
        )
    lines.append(
        f"  {'signed API, Python client, ' + str(plan.concurrency) + ' tasks':<44}"
        f"{python.accepted_per_s:>12,.1f}{python.accepted:>11,}"
        f"{'errors ' + str(sum(python.errors.values())):>30}"
    )
    for size, run in sorted(report.batches.items()):
        lines.append(
            f"  {f'batches of {size:,}, entries':<44}"
            f"{run.posted_per_s:>12,.1f}{run.posted:>11,}{_statuses(run):>30}"
        )
    if not report.batch_available:
        lines.append("  batches: the server has no POST /v1/transactions/batch, not measured")
    lines += [
        f"  {'ledger service, spread':<44}{report.service.entries_per_s:>12,.1f}"
        f"{report.service.entries:>11,}",
        f"  {'pgbench TPC-B (tps)':<44}{report.pgbench_tps:>12,.1f}",
        "",
    ]
    if report.wrk_latency is not None:
        latency = report.wrk_latency.latency_ms
        lines.append(
            f"  latency, wrk at {report.wrk_latency.connections} connections (ms): "
            f"p50 {latency['p50']:.1f}, p90 {latency['p90']:.1f}, p99 {latency['p99']:.1f}, "
            f"max {latency['max']:.1f}"
        )
    py_latency = python.latency_ms()
    lines += [
        f"  latency, Python client at {plan.concurrency} tasks (ms): p50 {py_latency['p50']:.1f}, "
        f"p90 {py_latency['p90']:.1f}, p99 {py_latency['p99']:.1f}",
        "",
        _cpu_line("CPU, wrk", report.cpu.get("wrk_throughput", CpuUse()), wrk.entries, "request"),
        f"  of it wrk itself: {wrk.cpu_s / wrk.entries * 1e3 if wrk.entries else 0:.3f} ms "
        "per request",
        _cpu_line(
            "CPU, Python client",
            report.cpu.get("python_client", CpuUse()),
            python.accepted,
            "request",
        ),
    ]
    for size, run in sorted(report.batches.items()):
        lines.append(
            _cpu_line(
                f"CPU, batches of {size:,}",
                report.cpu.get(f"batch_{size}", CpuUse()),
                run.posted,
                "entry",
            )
        )
    lines += ["", f"  {'goal':<42}{'value':>10}   bar"]
    for goal in report.goals:
        lines.append(goal.line(" ms") if isinstance(goal, AtMost) else goal.line())
    lines.append(
        f"  {'Python client / pgbench TPC-B':<42}"
        f"{ratio(python.accepted_per_s, report.pgbench_tps):>10.3f}"
    )
    lines.append("")
    if report.invariant_violations:
        lines.append(f"  LEDGER INVARIANTS BROKEN ({len(report.invariant_violations)}):")
        lines += [f"    {v}" for v in report.invariant_violations[:20]]
    else:
        lines.append("  ledger invariants: all hold")
    high = report.entries_counted + report.entries_unanswered_at_most
    verdict = "as answered" if report.checks_hold() else "ENTRY COUNT OUT OF BOUNDS"
    lines.append(
        f"  entries in the database: {report.entries_in_database:,} ({verdict}: "
        f"{report.entries_counted:,} answered as posted, at most {high:,} with those "
        "unanswered when a run ended)"
    )
    return "\n".join(lines)


def _statuses(run: WrkRun) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(run.statuses.items()))
