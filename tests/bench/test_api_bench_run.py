"""``clearhouse bench api`` run once at its smallest, on the test server, with wrk: every
pre-signed request the server accepts, every run reports positive figures, the entries add up.

wrk comes from Debian (``make bench-deps``; ``make test-bench-api`` installs it and runs this);
``make test`` leaves it out, ``.ci/run`` runs it after installing wrk. Figures, not bars: a
tiny run says nothing about speed.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from clearhouse.bench.api import render, run_api_bench, write_report
from clearhouse.config import Settings
from clearhouse.storage.engine import embedded_url
from clearhouse_client import AsyncPartnerClient

REPO = Path(__file__).resolve().parents[2]


def _settings() -> Settings:
    server_url = os.environ.get("TEST_DATABASE_URL") or embedded_url(REPO / ".clearhouse")
    return Settings.from_env({"DATABASE_URL": server_url, "CLEARHOUSE_LOG_LEVEL": "WARNING"})


def _positive(value: object, where: str) -> None:
    assert isinstance(value, int | float), where
    assert not isinstance(value, bool), where
    assert value > 0, f"{where} is {value}"


def test_api_bench_replays_presigned_requests_with_wrk_and_reports_every_figure(
    tmp_path: Path,
) -> None:
    report = asyncio.run(
        run_api_bench(
            _settings(),
            AsyncPartnerClient,
            connections=4,
            latency_connections=2,
            concurrency=4,
            workers=4,
            seconds=2,
            batch_sizes=(10,),
        )
    )
    path = tmp_path / "bench-api.json"
    write_report(report, path)
    data = json.loads(path.read_text(encoding="utf-8"))

    assert data["benchmark"] == "clearhouse bench api"
    for name in ("wrk_throughput", "wrk_latency"):
        run = data["runs"][name]
        assert set(run["statuses"]) == {"201"}, f"{name}: {run['statuses']}"
        assert run["errors"] == {}
        _positive(run["entries_per_s"], f"runs.{name}.entries_per_s")
        _positive(run["wrk_cpu_s"], f"runs.{name}.wrk_cpu_s")
    assert len(data["runs"]["wrk_throughput"]["halves"]) == 2
    api = data["api"]
    _positive(api["accepted_per_s"], "api.accepted_per_s")
    for name in ("p50", "p90", "p99", "max"):
        _positive(api["latency_ms"][name], f"api.latency_ms.{name}")
    for name in ("server_workers", "postgresql_backends", "wrk"):
        _positive(api["cpu_ms_per_accepted_request"][name], f"api.cpu.{name}")
    python_client = data["python_client"]
    _positive(python_client["accepted_per_s"], "python_client.accepted_per_s")
    assert data["runs"]["python_client"]["errors"] == {}
    _positive(data["pgbench_tps"], "pgbench_tps")
    _positive(data["ledger_service_entries_per_s"], "ledger_service_entries_per_s")
    for name in ("api_over_pgbench", "p99_ms_at_latency_connections", "server_cpu_ms_per_request"):
        _positive(data["goals"][name]["value"], f"goals.{name}")
    if data["batch"]["available"]:
        assert data["runs"]["batch_10"]["statuses"] == {
            "200": data["runs"]["batch_10"]["responses"]
        }
        _positive(data["batch"]["10"]["entries_per_s"], "batch.10.entries_per_s")
        _positive(data["goals"]["batch_10_over_single"]["value"], "goals.batch_10_over_single")
    checks = data["checks"]
    assert checks["invariant_violations"] == []
    assert checks["hold"] is True, checks
    assert "ledger invariants: all hold" in render(report)
