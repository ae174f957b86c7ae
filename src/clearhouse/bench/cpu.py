"""CPU seconds by whom during a timed run: this process, a server's processes, PostgreSQL's
backends and the whole machine, read from Linux ``/proc`` (zeros where it cannot be read).

The benchmarks share the machine with what they measure, and on a small machine with whatever
else runs; these figures say how many cores each party took and what one request cost in CPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds spent during a timed run, by whom (Linux ``/proc``; zeros elsewhere)."""

    elapsed_s: float = 0.0
    load_generator_s: float = 0.0
    server_s: float = 0.0
    postgresql_s: float = 0.0
    machine_busy_s: float = 0.0

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(
            self.elapsed_s + other.elapsed_s,
            self.load_generator_s + other.load_generator_s,
            self.server_s + other.server_s,
            self.postgresql_s + other.postgresql_s,
            self.machine_busy_s + other.machine_busy_s,
        )

    def cores(self) -> dict[str, float]:
        """Average cores busy: load generator, server, its PostgreSQL backends, all the rest."""
        if self.elapsed_s <= 0:
            return {}
        ours = self.load_generator_s + self.server_s + self.postgresql_s
        return {
            "load_generator": self.load_generator_s / self.elapsed_s,
            "server_workers": self.server_s / self.elapsed_s,
            "postgresql_backends": self.postgresql_s / self.elapsed_s,
            "other": max(0.0, self.machine_busy_s - ours) / self.elapsed_s,
            "machine": self.machine_busy_s / self.elapsed_s,
        }

    def ms_per_request(self, requests: int) -> dict[str, float]:
        """CPU milliseconds per accepted request: load generator, server, PostgreSQL backends."""
        if requests <= 0:
            return {}
        return {
            "load_generator": self.load_generator_s / requests * 1e3,
            "server_workers": self.server_s / requests * 1e3,
            "postgresql_backends": self.postgresql_s / requests * 1e3,
        }

    def as_json(self, requests: int) -> dict[str, object]:
        return {
            "cpu_ms_per_accepted_request": {
                k: round(v, 3) for k, v in self.ms_per_request(requests).items()
            },
            "cores_busy": {k: round(v, 2) for k, v in self.cores().items()},
            "cpu_count": os.cpu_count(),
            "how": "/proc of this process, of the serve process and its children, of the "
            "PostgreSQL backends connected to the bench database (0 when PostgreSQL is not "
            "local), and /proc/stat for the machine; 'other' is whatever else ran meanwhile "
            "(PostgreSQL's own background processes, the kernel, other people's work)",
        }


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float
    own_s: float
    server_s: float
    backends_s: dict[int, float]
    machine_busy_s: float

    def since(self, before: CpuSample) -> CpuUse:
        # A backend that connected in between spent all its CPU in between.
        postgresql_s = sum(
            s - before.backends_s.get(pid, 0.0) for pid, s in self.backends_s.items()
        )
        return CpuUse(
            self.at - before.at,
            self.own_s - before.own_s,
            self.server_s - before.server_s,
            postgresql_s,
            self.machine_busy_s - before.machine_busy_s,
        )


def cpu_sample(server_pid: int, backend_pids: Sequence[int]) -> CpuSample:
    return CpuSample(
        time.monotonic(),
        time.process_time(),
        sum(process_cpu_s(pid) for pid in [server_pid, *child_pids(server_pid)]),
        {pid: process_cpu_s(pid) for pid in backend_pids},
        machine_busy_s(),
    )


def _ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of one process so far; 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _ticks()


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (not idle, not waiting for I/O)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0
    values = [int(v) for v in first[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _ticks()
