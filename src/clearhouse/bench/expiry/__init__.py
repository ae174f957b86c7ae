"""``clearhouse bench expiry``: N lots of M members, all past their time, expired by the product
beside the one raw statement that does the same writes.

In one run, on one server, in databases of its own (``clearhouse_bench_expiry``, and
``clearhouse_bench_expiry_run`` for each run):

1. **Load.** Migrate, one partner through ``load_contracts``, the members through
   ``enrol_members``, then the lots in bulk with set-based SQL in ONE transaction
   (``bench.lots``): per lot an issue entry recorded in January 2029 (sandbox ledger clock), its
   two postings and the lot, expiring a year after it was recorded; every member's balance the
   sum of its lots. The ledger's triggers stay on: the deferred checks that each entry balances,
   that a member's lots add up to its balance and that a lot's remainder is its points less its
   consumptions all run at commit. Then VACUUM ANALYZE, the ledger's invariants checked, and the
   ledger clock set to March 2030, past every lot.
2. **Runs, in the order raw, product, raw.** Each on a fresh file copy of the loaded database,
   made just before it and followed by a CHECKPOINT, so all three start from the same rows,
   none of them yet in PostgreSQL's shared buffers; the reference runs before and after the
   product, so a drift of a shared machine bears on both sides alike, and its figure is the mean
   of the two.
   - **product**: ``Expiry.run`` composed as ``clearhouse expiry run`` and ``serve`` compose it
     (``Services``): the holds' sweep, batches of ``BATCH_MEMBERS`` members, each one
     transaction of ``expiry_run_batch``, then the reminders' pass (nothing is due to expire
     later here, so it records none);
   - **raw**: one statement in one transaction, none of the product's functions
     (``reference.RAW_EXPIRY``), doing the writes an expiry entry makes: the member's balance
     decremented, one ``expiry`` entry per member, its two postings (member -> coalition:breakage),
     a consumption per lot and the lot at 0. ``ledger_post`` writes nothing else for a debit that
     an expiry would need (its idempotency key and daily points are an issue's or a redeem's), and
     the ledger keeps no per-entry tree or counter rows: the root is computed when a month closes.
   After each run every lot must be at 0, every member expired by one entry of all its points,
   each lot consumed once, and ``invariant_violations`` empty: otherwise the benchmark fails
   (``BenchError``), so a fast but wrong run cannot report a figure.

Per run: seconds, lots/s, members/s, CPU seconds of this process and of the PostgreSQL backends
(``/proc``, 0 when PostgreSQL is not local), the peak resident set of this process; the goal
held, not asserted: product / raw <= 2.0.

The package in the order of a run: ``loading`` (the lots in bulk), ``reference`` (the raw
statement), ``run`` (the runs and their checks), ``report`` (the goal, the JSON and the table).
"""

from clearhouse.bench.expiry.report import ExpiryBenchReport, render, write_report
from clearhouse.bench.expiry.run import run_expiry_bench

__all__ = [
    "ExpiryBenchReport",
    "render",
    "run_expiry_bench",
    "write_report",
]
