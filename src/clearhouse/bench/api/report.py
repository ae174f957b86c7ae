"""The API benchmark's figures: the runs, the ratio and the latency bar, the CPU each party
took, the JSON report and the plain-text table."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from clearhouse.bench.api.traffic import ApiRun
from clearhouse.bench.cpu import CpuUse
from clearhouse.bench.ledger import (
    ISSUE_SHARE,
    MEMBERS,
    PARTNERS,
    POINTS_MAX,
    SEED_POINTS,
    Throughput,
)
from clearhouse.bench.report import (
    Ceiling,
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

GOAL_API_OVER_PGBENCH: Final = 0.35
GOAL_P99_MS: Final = 50.0

SAME_MACHINE_NOTE: Final = (
    "The load generator (this process: one asyncio loop, the partner client over httpx) runs on "
    "the same machine as the server's workers and PostgreSQL and takes CPU from them; latencies "
    "are as the client sees them, its signing, receipt check and queueing included."
)


@dataclass(frozen=True, slots=True)
class ApiBenchReport:
    timestamp: str
    machine: dict[str, object]
    concurrency: int
    workers: int
    seconds: int
    server: dict[str, object]
    seed: Throughput
    api: ApiRun
    api_halves: list[ApiRun]
    service: Throughput
    pgbench_tps: float
    cpu: CpuUse
    service_cpu: CpuUse
    entries_posted: int
    entries_in_database: int
    invariant_violations: list[str]

    @property
    def ratios(self) -> list[Ratio]:
        return [
            Ratio(
                "api_over_pgbench",
                "signed API / pgbench TPC-B",
                ratio(self.api.accepted_per_s, self.pgbench_tps),
                GOAL_API_OVER_PGBENCH,
                binding=True,
            )
        ]

    @property
    def p99(self) -> Ceiling:
        return Ceiling(
            "p99_latency_ms", "signed API p99 (ms)", self.api.latency_ms()["p99"], GOAL_P99_MS, "ms"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "benchmark": "clearhouse bench api",
            "timestamp": self.timestamp,
            "machine": self.machine,
            "load_generator_on_same_machine": True,
            "note": SAME_MACHINE_NOTE,
            "settings": {
                "concurrency": self.concurrency,
                "workers": self.workers,
                "seconds": self.seconds,
                "server": self.server,
                "client": "clearhouse_client.AsyncPartnerClient (httpx, HTTP/1.1, loopback), "
                "one per partner, pinned coalition key",
                "members": MEMBERS,
                "partners": PARTNERS,
                "mix": {
                    "issue_share": ISSUE_SHARE,
                    "points_per_entry": [1, POINTS_MAX],
                    "seed_points_per_member": SEED_POINTS,
                },
                "order": "API, service, pgbench, service, API (halves around pgbench)",
            },
            "api": self.api.as_json(),
            "ledger_service_entries_per_s": round(self.service.entries_per_s, 1),
            "pgbench_tps": round(self.pgbench_tps, 1),
            "pgbench": {
                "mode": "built-in TPC-B",
                "scale": PGBENCH_SCALE,
                "clients": self.workers,
                "threads": pgbench_threads(self.workers),
            },
            "ratios": {
                **{r.name: r.as_json() for r in self.ratios},
                "api_over_service": round(
                    ratio(self.api.accepted_per_s, self.service.entries_per_s), 3
                ),
                self.p99.name: self.p99.as_json(),
            },
            "cpu_during_api_runs": self.cpu.as_json(self.api.accepted),
            "cpu_during_service_runs": {
                **self.service_cpu.as_json(self.service.entries),
                "note": "load_generator is this process posting through the ledger service "
                "(no HTTP, no signatures); the server is idle then",
            },
            "runs": {
                "seed": self.seed.as_json(),
                "api_halves": [half.as_json() for half in self.api_halves],
                "ledger_service": self.service.as_json(),
            },
            "checks": {
                "entries_posted": self.entries_posted,
                "entries_in_database": self.entries_in_database,
                "invariant_violations": self.invariant_violations,
            },
        }


def write_report(report: ApiBenchReport, path: Path) -> None:
    write_json(report.as_json(), path)


def render(report: ApiBenchReport) -> str:
    """The figures as a plain-text table."""
    api = report.api
    latency = api.latency_ms()
    lines = [
        headline(
            "clearhouse bench api",
            f"{report.concurrency} client tasks, {report.workers} workers and pgbench clients, "
            f"{report.seconds} s per run",
            report.machine,
        ),
        "",
        f"  {'run':<34}{'per second':>12}{'accepted':>11}{'refused':>9}{'errors':>8}",
        f"  {'signed API (HTTP, 2 workers)':<34}{api.accepted_per_s:>12,.1f}"
        f"{api.accepted:>11,}{api.refused:>9,}{sum(api.errors.values()):>8,}",
        f"  {'ledger service, spread':<34}{report.service.entries_per_s:>12,.1f}"
        f"{report.service.entries:>11,}{report.service.refused:>9,}",
        f"  {'pgbench TPC-B (tps)':<34}{report.pgbench_tps:>12,.1f}",
        "",
        f"  signed API latency (ms): p50 {latency['p50']:.1f}, p90 {latency['p90']:.1f}, "
        f"p99 {latency['p99']:.1f}, max {latency['max']:.1f}, mean {latency['mean']:.1f}",
    ]
    if api.errors:
        lines.append(f"  errors: {dict(api.errors)}")
    lines += ["", f"  {'ratio':<34}{'value':>12}   bar"]
    lines += [r.line() for r in report.ratios]
    lines.append(report.p99.line())
    lines.append(
        f"  {'signed API / ledger service':<34}"
        f"{ratio(api.accepted_per_s, report.service.entries_per_s):>12.2f}"
    )
    cores = report.cpu.cores()
    if cores:
        lines += [
            "",
            "  cores busy during the API runs (same machine): "
            f"load generator {cores['load_generator']:.2f}, "
            f"server workers {cores['server_workers']:.2f}, "
            f"PostgreSQL backends {cores['postgresql_backends']:.2f}, "
            f"other {cores['other']:.2f}; all {cores['machine']:.2f} of {os.cpu_count()}",
        ]
        per_request = report.cpu.ms_per_request(api.accepted)
        lines.append(
            "  CPU ms per accepted request: "
            f"load generator {per_request['load_generator']:.2f}, "
            f"server workers {per_request['server_workers']:.2f}, "
            f"PostgreSQL backends {per_request['postgresql_backends']:.2f}"
        )
        per_entry = report.service_cpu.ms_per_request(report.service.entries)
        if per_entry:
            lines.append(
                "  CPU ms per ledger service entry: "
                f"this process {per_entry['load_generator']:.2f}, "
                f"PostgreSQL backends {per_entry['postgresql_backends']:.2f}"
            )
    lines.append("")
    lines += check_lines(
        report.invariant_violations, report.entries_posted, report.entries_in_database
    )
    return "\n".join(lines)
