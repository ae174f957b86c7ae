"""``clearhouse bench ledger``: entries per second through the ledger service, beside its limits.

In one run, on one server, each for the same time with the same number of concurrent workers:

- the ledger service (``services.posting.Ledger``) posting a mix of issues and redeems, in two
  shapes: spread over 10,000 members and 5 partners, and all traffic from one partner (a hot
  partner row would show here as a drop);
- the service spread again on connections with ``synchronous_commit=off`` (a reported figure:
  a crash may lose the last 3 x ``wal_writer_delay`` of commits; the product keeps it on);
- "bare": one ``SELECT ledger_post(...)`` per entry on a plain asyncpg pool in autocommit, with
  neither SQLAlchemy nor domain code: every rule the database holds, without the service;
- "bare statement" (``limit``): one plain data-modifying statement per entry making the key, the
  conditional balance update, the entry and its two postings in trigger-free copies of the
  tables: the most this machine posts;
- pgbench's built-in TPC-B, with the pgbench that the ``pgserver`` wheel ships.

The five runs go in two halves each, around pgbench (A B C D E pgbench E D C B A), so that the
drift of a shared machine bears on every figure alike and the ratios compare like with like.
Then what lots cost a redeem: members loaded in bulk (``bench.lots``) holding 20 points in one
lot or in twenty lots of 1 point, and bare redeems of those 20 points, each member once, so that
every redeem takes exactly one lot or exactly twenty (a consumption row and a lot update each,
and the deferred lot checks at commit); each shape's 2,000 members in two halves (one, twenty,
twenty, one), the same workers as above.
It works in databases of its own (``clearhouse_bench``, ``clearhouse_pgbench``), made afresh and
dropped at the end. Every call carries an idempotency key of its own. A figure, not a test; the
ledger's invariants are still checked once at the end, so a fast but wrong run cannot pass.

The package: ``coalition`` (partners, members, the mix, the seed), ``posting`` (the service's
post and the bare one), ``limit`` (the bare statement), ``driving`` (the timed loop), ``report``
(ratios, JSON, table), ``run``.
The server, its bench databases and pgbench are ``bench.servers``; the machine facts, bars and
JSON file are ``bench.report``. The setup (``prepare``), the service's post (``service_post``)
and the timed loop (``drive``) serve ``clearhouse bench api`` too.
"""

from clearhouse.bench.ledger.coalition import (
    ISSUE_SHARE,
    MEMBERS,
    PARTNERS,
    POINTS_MAX,
    SEED_POINTS,
    WARMUP_SECONDS,
    bench_ids,
    bench_ledger,
    prepare,
)
from clearhouse.bench.ledger.driving import Throughput, drive
from clearhouse.bench.ledger.posting import pick, service_post
from clearhouse.bench.ledger.report import LedgerBenchReport, render, write_report
from clearhouse.bench.ledger.run import run_ledger_bench
from clearhouse.bench.servers import BenchError

__all__ = [
    "ISSUE_SHARE",
    "MEMBERS",
    "PARTNERS",
    "POINTS_MAX",
    "SEED_POINTS",
    "WARMUP_SECONDS",
    "BenchError",
    "LedgerBenchReport",
    "Throughput",
    "bench_ids",
    "bench_ledger",
    "drive",
    "pick",
    "prepare",
    "render",
    "run_ledger_bench",
    "service_post",
    "write_report",
]
