"""``clearhouse bench api``: signed issue and redeem traffic over HTTP against a real server.

In one run, on one PostgreSQL server:

- a real ``clearhouse serve --workers 2`` process (uvicorn) on a free loopback port, on a fresh
  bench database (migrated, 5 partners each with an Ed25519 key, 10,000 members with balances);
- ``concurrency`` tasks of this process sending signed issues and redeems through the partner
  client (``AsyncPartnerClient``: RFC 9421 signature, Content-Digest, Idempotency-Key, receipt
  check) for ``seconds``; each accepted request (201) counts, with its latency as the client
  sees it, signing and receipt check included;
- for reference, the same mix through the ledger service without HTTP (``bench ledger``'s
  "spread" figure) and pgbench's TPC-B, each for the same time.

As in ``bench ledger``, the runs go in two halves around pgbench (API, service, pgbench,
service, API). The load generator shares the machine with the server and PostgreSQL, so the
report also says how many cores each took during the API run.

The layers keep ``clearhouse.bench`` below the partner client; the CLI hands the client class
in (``ClientFactory``).

The package: ``server`` (the served process), ``traffic`` (the clients and their tasks), ``run``
(the timed runs), ``report`` (ratios, JSON, table).
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
