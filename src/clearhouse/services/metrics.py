"""Prometheus metrics of one process (``GET /metrics``).

With several workers each process counts its own; a scraper adds them up per instance.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY: Final = CollectorRegistry(auto_describe=True)

REQUESTS: Final = Counter(
    "clearhouse_requests",
    "HTTP requests answered, by route and status",
    ["method", "route", "status"],
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

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def exposition() -> bytes:
    return generate_latest(REGISTRY)
