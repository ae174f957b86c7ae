"""Prometheus metrics (``GET /metrics``), of one process or of all the workers of a serve run.

A single process keeps its figures in memory, in ``REGISTRY``, beside the process's own (CPU,
memory, open files) and the interpreter's. ``clearhouse serve --workers N`` with N above 1
gives its workers a directory of the run (``services/worker_metrics.py``); prometheus_client
then keeps every value in a memory-mapped file there, one set of files per worker, and
``exposition()`` adds the files of all workers up, whichever worker is asked.

prometheus_client chooses how values are kept once, when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``; the metrics below are created at import too. So the variable has
to be in the environment before a worker imports anything: ``serve`` sets it in the parent,
before uvicorn spawns the workers, and each worker starts a fresh interpreter that inherits it.
This module reads the variable at import, as prometheus_client does, so the two always agree;
it is never set or changed in a process that has already imported this module.

Across workers, counters and histograms are summed; ``clearhouse_build_info`` is the same in
every worker and is shown once. The process metrics are left out: the CPU and memory of
whichever worker answered would pass for the server's.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from clearhouse import __version__
from clearhouse.services.worker_metrics import MULTIPROCESS_DIR_VARIABLE

MULTIPROCESS_DIR: Final = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
"""The directory the workers share, or ``None`` in a single process."""

REGISTRY: Final = CollectorRegistry(auto_describe=True)
"""Where the metrics are created; the exposition of a single process."""

REQUESTS: Final = Counter(
    "clearhouse_requests",
    "HTTP requests answered, by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS: Final = Histogram(
    "clearhouse_request_duration_seconds",
    "Time from a request's arrival to its answer, by route and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
SIGNATURE_FAILURES: Final = Counter(
    "clearhouse_signature_failures",
    "Partner requests refused at the signature check, by problem code",
    ["code"],
    registry=REGISTRY,
)
ENTRIES_POSTED: Final = Counter(
    "clearhouse_entries_posted",
    "Ledger entries recorded (replays not counted), by kind",
    ["kind"],
    registry=REGISTRY,
)
SETTLEMENT_SECONDS: Final = Histogram(
    "clearhouse_settlement_seconds",
    "Time to settle a period (net, post, state and sign)",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
    registry=REGISTRY,
)
BUILD_INFO: Final = Gauge(
    "clearhouse_build_info",
    "The version of Clearhouse that answers (always 1)",
    ["version"],
    # Every worker runs the same build: one sample, not one per worker. prometheus_client's
    # Info does not work across workers, hence a gauge.
    multiprocess_mode="max",
    registry=REGISTRY,
)
BUILD_INFO.labels(__version__).set(1)

if MULTIPROCESS_DIR is None:
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The text format ``generate_latest`` writes, with its one charset."""


def exposition() -> bytes:
    """The metrics in Prometheus's text format: this process's, or all the workers' summed."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    # A registry of its own for each scrape, as prometheus_client asks: the collector reads
    # the files as they are now.
    workers = CollectorRegistry()
    multiprocess.MultiProcessCollector(workers, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    PlatformCollector(registry=workers)
    return generate_latest(workers)
