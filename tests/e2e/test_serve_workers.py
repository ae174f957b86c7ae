"""``clearhouse serve --workers 2``: the workers count into one set of metrics.

Each worker writes its figures to files in a directory of the serve run
(``PROMETHEUS_MULTIPROC_DIR``); ``/metrics``, whichever worker answers it, adds them up. The
directory is made before the workers start and removed when the server stops.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Final

import httpx
from prometheus_client.parser import text_string_to_metric_families

from clearhouse import __version__
from tests.e2e.conftest import CLEARHOUSE, serving

WORKERS: Final = 2
HEALTH_REQUESTS_MAX: Final = 400
"""Requests sent, one a connection, at most, until every worker has answered one."""
HEALTH: Final = (("method", "GET"), ("route", "/health"), ("status", "200"))

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _pids_that_counted(directory: Path) -> set[str]:
    return {path.stem.removeprefix("counter_") for path in directory.glob("counter_*.db")}


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_workers_add_up_in_one_exposition_and_leave_no_files_behind(
    sandbox_environment: dict[str, str], tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    environment = {
        name: value
        for name, value in sandbox_environment.items()
        if name != "PROMETHEUS_MULTIPROC_DIR"
    } | {"TMPDIR": str(scratch)}
    created = subprocess.run(
        [CLEARHOUSE, "token", "create", "--role", "operator", "--json"],
        env=environment,
        capture_output=True,
        check=True,
    )
    operator = {"Authorization": f"Bearer {json.loads(created.stdout)['secret']}"}

    with serving(environment, tmp_path, "--workers", str(WORKERS), stops_cleanly=True) as url:
        (directory,) = scratch.glob("clearhouse-metrics-*")
        answered = 0
        while len(_pids_that_counted(directory)) < WORKERS:
            assert answered < HEALTH_REQUESTS_MAX, "one worker answered every request"
            # A new connection each time, so that the kernel may hand it to either worker.
            response = httpx.get(f"{url}/health", headers={"Connection": "close"})
            assert response.status_code == 200
            answered += 1
        samples = _samples(httpx.get(f"{url}/metrics", headers=operator).text)

    assert samples[("clearhouse_requests_total", HEALTH)] == answered
    assert samples[("clearhouse_request_duration_seconds_count", HEALTH)] == answered
    assert samples[("clearhouse_build_info", (("version", __version__),))] == 1
    assert not any(name.startswith("process_") for name, _ in samples)
    assert list(scratch.iterdir()) == []
