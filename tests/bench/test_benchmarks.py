"""Each benchmark run once at the smallest sizes its options allow, on the test server.

Figures, not bars: a tiny run says nothing about speed, so these tests check that every
benchmark still runs end to end through the product's code, that its report carries the fields
``docs/scaling.md`` and the CLI read, and that what it measured are positive numbers. The
benchmarks work in databases of fixed names of their own (``clearhouse_bench*``), made afresh
and dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from clearhouse.bench.clearing import render as render_clearing
from clearhouse.bench.clearing import run_clearing_bench
from clearhouse.bench.clearing import write_report as write_clearing_report
from clearhouse.bench.expiry import render as render_expiry
from clearhouse.bench.expiry import run_expiry_bench
from clearhouse.bench.expiry import write_report as write_expiry_report
from clearhouse.bench.ledger import render as render_ledger
from clearhouse.bench.ledger import run_ledger_bench
from clearhouse.bench.ledger import write_report as write_ledger_report
from clearhouse.bench.ledger.posting import BARE_POST
from clearhouse.config import Settings
from clearhouse.storage.engine import embedded_url

REPO = Path(__file__).resolve().parents[2]
R = TypeVar("R")


def _settings() -> Settings:
    """The test server (``TEST_DATABASE_URL``, or the embedded one) as the benchmarks' server."""
    server_url = os.environ.get("TEST_DATABASE_URL") or embedded_url(REPO / ".clearhouse")
    return Settings.from_env({"DATABASE_URL": server_url, "CLEARHOUSE_LOG_LEVEL": "WARNING"})


def _positive(value: object, where: str) -> None:
    assert isinstance(value, int | float), where
    assert not isinstance(value, bool), where
    assert value > 0, f"{where} is {value}"


def _written(write: Callable[[R, Path], None], report: R, tmp_path: Path, name: str) -> Any:
    """The report as ``clearhouse bench`` writes it, read back."""
    path = tmp_path / "reports" / name
    write(report, path)
    return json.loads(path.read_text(encoding="utf-8"))


def test_clearing_bench_settles_a_tiny_month_through_the_product_and_reports_every_step(
    tmp_path: Path,
) -> None:
    report = asyncio.run(
        run_clearing_bench(
            _settings(),
            entries=300,
            members=30,
            partners=2,
            repeats=1,
            traced_pass=True,
            larger=(450,),
        )
    )
    data = _written(write_clearing_report, report, tmp_path, "bench-clearing.json")

    assert data["benchmark"] == "clearhouse bench clearing"
    assert data["parameters"] == {
        "entries": 300,
        "members": 30,
        "partners": 2,
        "period": "2030-01",
        "zone": "Europe/Berlin",
        "second_contract_version_from": "2030-01-16T00:00:00+01:00",
    }
    load = data["load"]
    assert isinstance(load, dict)
    assert load["entries"] == 300
    assert load["postings"] == 600
    for name in ("seconds", "entries_per_s", "database_bytes"):
        _positive(load[name], f"load.{name}")
    steps = data["steps"]
    assert isinstance(steps, dict)
    assert set(steps) == {"close", "settle", "netting", "group_by", "workbooks", "bare_writer"}
    for name, step in steps.items():
        for figure in ("seconds", "rows", "rows_per_s", "rss_peak_mib", "ru_maxrss_after_mib"):
            _positive(step[figure], f"steps.{name}.{figure}")
        assert set(step["cpu_seconds"]) == {"this_process", "postgresql_backends"}
    for name in ("close", "settle", "workbooks"):
        assert steps[name]["tracemalloc_peak_mib"] >= 0
        _positive(steps[name]["traced_pass_seconds"], f"steps.{name}.traced_pass_seconds")
    assert len(steps["netting"]["runs_seconds"]) == 1
    goals = data["goals"]
    assert isinstance(goals, dict)
    assert set(goals) == {
        "netting_over_group_by",
        "workbooks_over_bare_writer",
        "peak_rss_mib",
        "close_entries_per_s",
        "peak_rss_mib_at_largest",
        "peak_growth",
    }
    for name, goal in goals.items():
        _positive(goal["value"], f"goals.{name}.value")
        assert isinstance(goal["met"], bool)
    settlement = data["settlement"]
    assert isinstance(settlement, dict)
    assert settlement["entry_count"] == 300
    assert settlement["statements"] == 3  # two partners and the coalition
    assert settlement["roll_forward_closing"] == settlement["member_balances_at_cut_off"]
    assert [w["party"] for w in data["workbooks"]] == [w["party"] for w in data["bare_workbooks"]]
    assert all(w["rows"] > 0 and w["bytes"] > 0 for w in data["workbooks"])
    assert data["checks"] == {"invariant_violations_after_load": []}
    (further,) = data["at_further_entry_counts"]
    assert further["entries"] == 450
    assert set(further["steps"]) == {"close", "settle", "netting", "group_by", "workbooks"}
    assert [w["party"] for w in further["workbooks"]] == ["coalition"]
    assert further["workbooks"][0]["rows"] == 450
    _positive(further["process_peak_rss_mib"], "at_further_entry_counts.process_peak_rss_mib")
    assert "ledger invariants after the load: all hold" in render_clearing(report)
    assert "at 450 entries" in render_clearing(report)


def test_expiry_bench_expires_tiny_lots_through_the_product_beside_the_raw_statement(
    tmp_path: Path,
) -> None:
    report = asyncio.run(run_expiry_bench(_settings(), lots=100, members=10))
    data = _written(write_expiry_report, report, tmp_path, "bench-expiry.json")

    assert data["benchmark"] == "clearhouse bench expiry"
    parameters = data["parameters"]
    assert isinstance(parameters, dict)
    assert (parameters["lots"], parameters["members"]) == (100, 10)
    load = data["load"]
    assert isinstance(load, dict)
    for name in ("seconds", "lots_per_s", "points", "database_bytes"):
        _positive(load[name], f"load.{name}")
    runs = data["runs"]
    assert isinstance(runs, dict)
    assert set(runs) == {"raw_1", "product", "raw_2"}
    for name, run in runs.items():
        for figure in ("seconds", "lots_per_s", "members_per_s", "rss_peak_mib"):
            _positive(run[figure], f"runs.{name}.{figure}")
        assert set(run["cpu_seconds"]) == {"this_process", "postgresql_backends"}
        assert run["checks"] == {
            "members_expired": 10,
            "expiry_entries": 10,
            "lot_consumptions": 100,
            "points_expired": load["points"],
            "lots_left_with_points": 0,
            "invariant_violations": [],
        }
    assert runs["product"]["expiry_run"]["members"] == 10
    goal = data["goals"]["product_over_raw"]
    _positive(goal["value"], "goals.product_over_raw.value")
    assert goal["goal_at_most"] == 2.0
    assert isinstance(goal["met"], bool)
    _positive(data["memory"]["process_peak_rss_mib"], "memory.process_peak_rss_mib")
    assert data["checks"] == {"invariant_violations_after_load": []}
    assert "every lot expired, ledger invariants hold" in render_expiry(report)


def test_ledger_bench_posts_for_a_second_per_shape_and_reports_the_ratios(tmp_path: Path) -> None:
    report = asyncio.run(run_ledger_bench(_settings(), workers=4, seconds=1))
    data = _written(write_ledger_report, report, tmp_path, "bench-ledger.json")

    assert data["benchmark"] == "clearhouse bench ledger"
    assert (data["workers"], data["seconds"]) == (4, 1)
    rates = data["entries_per_s"]
    assert isinstance(rates, dict)
    assert set(rates) == {"spread", "one_partner", "service_async", "bare", "bare_statement"}
    for name, value in rates.items():
        _positive(value, f"entries_per_s.{name}")
    _positive(data["pgbench_tps"], "pgbench_tps")
    ratios = data["ratios"]
    assert isinstance(ratios, dict)
    assert set(ratios) == {
        "one_partner_over_spread",
        "spread_over_pgbench",
        "service_over_bare_statement",
        "service_over_bare",
    }
    for name, entry in ratios.items():
        _positive(entry["value"], f"ratios.{name}.value")
    for name, value in data["figures"].items():
        _positive(value, f"figures.{name}")
    assert data["service_async"]["synchronous_commit"] == "off"
    _positive(data["service_async"]["loss_window_ms"], "service_async.loss_window_ms")
    lot_cost = data["lot_cost"]
    assert isinstance(lot_cost, dict)
    assert set(lot_cost["entries_per_s"]) == {"one_lot", "twenty_lots"}
    for name, value in lot_cost["entries_per_s"].items():
        _positive(value, f"lot_cost.entries_per_s.{name}")
        assert lot_cost["runs"][name]["entries"] == 2000
        assert lot_cost["runs"][name]["refused"] == 0
    _positive(lot_cost["twenty_lots_over_one_lot"], "lot_cost.twenty_lots_over_one_lot")
    assert isinstance(lot_cost["extra_ms_per_redeem"], float)
    checks = data["checks"]
    assert isinstance(checks, dict)
    assert checks["invariant_violations"] == []
    assert checks["entries_posted"] == checks["entries_in_database"]
    assert "ledger invariants: all hold" in render_ledger(report)


def test_bare_post_passes_every_parameter_of_the_live_ledger_post(database_url: str) -> None:
    async def live_arguments() -> int:
        dsn = make_url(database_url).set(drivername="postgresql")
        connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            return int(
                await connection.fetchval(
                    "SELECT pronargs FROM pg_proc WHERE proname = 'ledger_post'"
                )
            )
        finally:
            await connection.close()

    placeholders = {int(n) for n in re.findall(r"\$(\d+)", BARE_POST)}
    assert placeholders == set(range(1, asyncio.run(live_arguments()) + 1))
