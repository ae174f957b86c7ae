"""What a step of the clearing benchmark took: seconds, CPU here and in PostgreSQL, resident
set sampled while it runs, ``ru_maxrss`` after it, and (traced pass) tracemalloc's heap peak."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Final

from clearhouse.bench.cpu import process_cpu_s
from clearhouse.services.database import Database

RSS_SAMPLE_S: Final = 0.01
MIB: Final = 1024 * 1024


def rss_bytes() -> int:
    """This process's resident set now (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def maxrss_bytes() -> int:
    """``ru_maxrss``: the process's high-water mark so far (KiB on Linux, bytes on macOS)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value) if platform.system() == "Darwin" else int(value) * 1024


class _RssSampler:
    """The highest resident set seen while it runs, sampled by a thread of its own."""

    def __init__(self, interval_s: float = RSS_SAMPLE_S) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> _RssSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


@dataclass(slots=True)
class Measured:
    """One step: its seconds, CPU seconds by whom, and what memory it took (bytes)."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    """CPU of this process (all its threads: the workbooks are zipped in a worker thread)."""
    postgres_cpu_s: float = 0.0
    """CPU of the PostgreSQL backends connected to the bench database (0 if not local)."""
    rss_before: int = 0
    rss_peak: int = 0
    maxrss_after: int = 0
    heap_peak: int | None = None
    """tracemalloc's peak of what the step allocated and kept at once (traced pass only)."""

    @classmethod
    def combined(cls, parts: Sequence[Measured]) -> Measured:
        """Parts of one step measured apart (one workbook each): times add, peaks are maxima."""
        heaps = [p.heap_peak for p in parts if p.heap_peak is not None]
        return cls(
            seconds=sum(p.seconds for p in parts),
            cpu_s=sum(p.cpu_s for p in parts),
            postgres_cpu_s=sum(p.postgres_cpu_s for p in parts),
            rss_before=parts[0].rss_before,
            rss_peak=max(p.rss_peak for p in parts),
            maxrss_after=max(p.maxrss_after for p in parts),
            heap_peak=max(heaps) if heaps else None,
        )


async def _backend_cpu(database: Database) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the bench database."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    return {int(r["pid"]): process_cpu_s(int(r["pid"])) for r in rows}


@contextlib.asynccontextmanager
async def measuring(database: Database, traced: bool) -> AsyncIterator[Measured]:
    """Time the block, its CPU here and in PostgreSQL; sample its resident set; under
    tracemalloc when ``traced``."""
    gc.collect()
    backends = await _backend_cpu(database)
    figures = Measured(rss_before=rss_bytes())
    cpu = time.process_time()
    with _RssSampler() as sampler:
        if traced:
            tracemalloc.start()
        start = time.perf_counter()
        try:
            yield figures
        finally:
            figures.seconds = time.perf_counter() - start
            if traced:
                figures.heap_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
    figures.cpu_s = time.process_time() - cpu
    figures.rss_peak = sampler.peak
    figures.maxrss_after = maxrss_bytes()
    # A backend that connected in between spent all its CPU in between.
    after = await _backend_cpu(database)
    figures.postgres_cpu_s = sum(s - backends.get(pid, 0.0) for pid, s in after.items())


def median(runs: Sequence[Measured]) -> Measured:
    """The run of median seconds (the lower middle one of an even number)."""
    ordered = sorted(runs, key=lambda m: m.seconds)
    return ordered[(len(ordered) - 1) // 2]


def mib(value: int) -> float:
    return round(value / MIB, 1)


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: how busy others kept it."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def memory_total_mib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None
