"""``clearhouse bench clearing``: a month of N entries closed, netted, settled and written out.

In one run, on one server, in a database of its own (``clearhouse_bench_clearing``):

1. **Load.** Migrate, load the partners' contracts through ``load_contracts`` (partner 1 has a
   second version in force from the middle of the month), enrol the members through
   ``enrol_members`` (members, their balance rows and accounts), then load the month in bulk with
   set-based SQL in ONE transaction: entries, their two balanced postings each, an idempotency key
   each, and every member's balance set to the sum of its postings. The ledger's triggers stay on:
   the deferred "each entry balances" triggers and the foreign keys run at commit. The mix, per
   member in rounds of three of its entries: an issue; a redeem (60 %) or an issue; then a partial
   reversal of one of the two (30 %), a redeem (40 %) or an issue. Redeems and reversals are sized
   so that no running balance ever goes below zero. Then VACUUM ANALYZE (what autovacuum does to a
   month of inserts) and the sandbox ledger clock is set past the month's end.
2. **Timed pass.** ``Clearing.close`` (the ledger root over the N canonical entries, and the
   breakage cohorts as of the cut-off),
   ``Clearing.settle`` (netting, the settlement entries, the signed statements), and
   ``Clearing.write_workbook`` for every statement (each partner's and the coalition's) into a
   temporary folder, each timed on its own. Beside them, on the same server and in the same
   process: the netting's aggregate part alone (``Clearing.net``: ``period_aggregates``,
   ``points_roll_forward``, the breakage cohorts sealed at close, the pure netting and checks,
   the code ``settle`` runs before it writes) alternating with the raw SQL ``GROUP BY`` a person
   would write over the same postings (per partner and kind, the points of the period), medians
   of ``--repeats`` runs each; and after each workbook a bare openpyxl write-only loop appending
   as many rows of the same ten columns (plain values of the same kinds and lengths, no formats,
   no cell objects) into a workbook of its own. Alternating the figures that are compared lets a
   drift of a shared machine bear on both alike.
3. **Further entry counts** (``--entries`` given again, 1,000,000 and 3,000,000 by default):
   each in a month of its own, loaded the same way, then close, settle, the netting beside the
   GROUP BY and the coalition's workbook (every entry; no partners' workbooks, no bare writer),
   for their rates and the memory: memory is flat when the largest count's peak is not much
   above the first's. The report is written after the timed pass and after each count.
4. **Traced pass** (unless ``--no-tracemalloc``): close, settle and the workbooks again, on a
   byte-identical copy of the loaded database made before the timed pass, each step under
   ``tracemalloc``, for the peak of the Python heap. tracemalloc slows the workbooks down about
   seven times, so this pass gives the heap figures only and the timed pass the seconds; the
   references are not traced (their memory is no goal).

Per step, besides seconds and rows/s: CPU seconds of this process (all threads) and of the
bench database's PostgreSQL backends (read from ``/proc``, 0 when PostgreSQL is not local), the
peak resident set of this process sampled every 10 ms from ``/proc/self/statm``, and
``ru_maxrss`` after the step, which is the high-water mark of the whole process so far (it never
goes down, so a step's figure may be an earlier step's peak). The memory goal is held against
``ru_maxrss`` at the end of the timed pass: the whole process, load included. PostgreSQL's own
memory is in none of these figures.

The package in the order of a run: ``loading`` (the month in bulk), ``measuring`` (what a step
took), ``references`` (the raw GROUP BY and the bare writer), ``timing`` (the passes and the
run), ``report`` (the goals, the JSON and the table).
"""

from clearhouse.bench.clearing.report import ClearingBenchReport, render, write_report
from clearhouse.bench.clearing.timing import run_clearing_bench

__all__ = [
    "ClearingBenchReport",
    "render",
    "run_clearing_bench",
    "write_report",
]
