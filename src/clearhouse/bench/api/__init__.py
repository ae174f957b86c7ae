"""``clearhouse bench api``: signed issue, redeem and batch traffic over HTTP against a real server.

In one run, on one PostgreSQL server:

- a real ``clearhouse serve --workers 2`` process (uvicorn) on a free loopback port, on a fresh
  bench database (migrated, 5 partners each with an Ed25519 key, 10,000 members with balances);
- ``wrk`` (Debian's compiled load generator) replaying requests signed beforehand with the
  partner client's own code, each with its own nonce and Idempotency-Key, signed just before
  its run so that ``created`` lies well within the server's signature window, and each sent
  once (a replayed nonce is refused): at ``connections`` for throughput, at
  ``latency_connections`` for latency, and batches of 100 and 1,000 items once the server
  serves ``POST /v1/transactions/batch``;
- the Python partner client (``AsyncPartnerClient``: signing, HTTP, receipt checks in this
  process) as a second figure: what a Python partner sees;
- for reference, the same mix through the ledger service without HTTP and pgbench's TPC-B.

The throughput runs go in two halves around pgbench (wrk, Python client, service, pgbench,
service, Python client, wrk), so that a shared machine's drift bears on them alike. During
every run the report says how much CPU the load generator, the server's workers and
PostgreSQL's backends took, per request and in cores.

The package: ``server`` (the served process), ``presigned`` (requests signed beforehand and
their files), ``wrk`` (its Lua script, command line and output), ``traffic`` (the Python
clients and their tasks), ``run`` (the timed runs), ``report`` (goals, JSON, table).
"""

from clearhouse.bench.api.report import ApiBenchReport, render, write_report
from clearhouse.bench.api.run import run_api_bench
from clearhouse.bench.api.traffic import ClientFactory, PartnerApi

__all__ = [
    "ApiBenchReport",
    "ClientFactory",
    "PartnerApi",
    "render",
    "run_api_bench",
    "write_report",
]
