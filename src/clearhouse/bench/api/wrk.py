"""``wrk`` (Debian's package, a compiled HTTP load generator) replaying pre-signed requests: the
Lua script it runs, its command line, and what it reports.

Each wrk thread reads its own request file (``presigned``) in ``init`` and hands out the next
request on every ``request()``, so that every request goes out once; a thread whose requests run
out stops (``exhausted_threads``) and the benchmark signs more and runs again. ``response()``
counts statuses and entries: a ``201`` is one entry, a ``200`` (a batch's answer) as many as its
results with ``"status":201``. ``done()`` prints one line of JSON after wrk's own summary,
after ``MARKER``: duration, requests, errors, latency percentiles, statuses and entries.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from clearhouse.bench.servers import BenchError

MARKER: Final = "CLEARHOUSE-WRK "
WRK_THREADS_MAX: Final = 2
"""One per core of the machine the figures come from."""
WRK_TIMEOUT_S: Final = 30

SCRIPT: Final = r"""-- Written by clearhouse bench api: replays pre-signed requests, each once.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1] .. "." .. id, "rb"))
  pool = {}
  while true do
    local length = file:read("*l")
    if length == nil then break end
    pool[#pool + 1] = file:read(tonumber(length))
  end
  file:close()
  following = 1
  sent = 0
  spare = wrk.format("GET", "/health")
  exhausted = 0
  entries = 0
  statuses = {}
end

function request()
  local next_request = pool[following]
  if next_request == nil then
    -- Each signed request goes out once; once they are gone, this thread ends.
    exhausted = 1
    wrk.thread:stop()
    return spare
  end
  pool[following] = nil
  following = following + 1
  sent = sent + 1
  return next_request
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 201 then
    entries = entries + 1
  elseif status == 200 and body ~= nil then
    local _, accepted = string.gsub(body, '"status":201', "")
    entries = entries + accepted
  end
end

function done(summary, latency, requests)
  local statuses_all, entries_all, sent_all, exhausted_all = {}, 0, 0, 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      statuses_all[status] = (statuses_all[status] or 0) + count
    end
    entries_all = entries_all + thread:get("entries")
    sent_all = sent_all + thread:get("sent")
    exhausted_all = exhausted_all + thread:get("exhausted")
  end
  local parts = {}
  for status, count in pairs(statuses_all) do
    parts[#parts + 1] = string.format('"%s":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'CLEARHOUSE-WRK {"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f},' ..
    '"statuses":{%s},"entries":%d,"sent":%d,"exhausted_threads":%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    table.concat(parts, ","), entries_all, sent_all, exhausted_all))
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    """What one wrk run reported, and the CPU wrk itself took."""

    duration_s: float
    requests: int
    """Responses received, whatever their status."""
    entries: int
    """Entries accepted: one per 201, a batch's 201 results."""
    sent: int
    """Pre-signed requests handed out."""
    statuses: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    exhausted_threads: int
    cpu_s: float = 0.0
    """wrk's own user and system CPU."""
    connections: int = 0
    threads: int = 0
    halves: list[WrkRun] = field(default_factory=list)
    recorded: int | None = None
    """Entries the ledger recorded while wrk ran (by ``recorded_at``), answered or not: for
    batches, whose answers come seconds apart, the throughput; None where not counted."""
    recorded_window_s: float = 0.0

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def posted(self) -> int:
        """The entries the run posted: those recorded while it ran where counted, else those
        answered."""
        return self.entries if self.recorded is None else self.recorded

    @property
    def posted_per_s(self) -> float:
        return self.entries_per_s if self.recorded is None else self.recorded_per_s

    @property
    def recorded_per_s(self) -> float:
        if self.recorded is None or self.recorded_window_s <= 0:
            return 0.0
        return self.recorded / self.recorded_window_s

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def unanswered(self) -> int:
        """Sent but without an answer when the run ended (the server may still post them)."""
        return max(0, self.sent - self.requests)

    @property
    def exhausted(self) -> bool:
        return self.exhausted_threads > 0

    @classmethod
    def total(cls, halves: list[WrkRun]) -> WrkRun:
        """Runs of the same shape taken together. Percentiles of two runs cannot be merged from
        their summaries; the whole gives each percentile's mean over the runs, weighted by their
        responses (each run's own stay in ``halves``)."""
        requests = sum(h.requests for h in halves)
        statuses: dict[str, int] = {}
        errors: dict[str, int] = {}
        for half in halves:
            for key, value in half.statuses.items():
                statuses[key] = statuses.get(key, 0) + value
            for key, value in half.errors.items():
                errors[key] = errors.get(key, 0) + value
        latency = {
            name: sum(h.latency_ms[name] * h.requests for h in halves) / requests
            if requests
            else 0.0
            for name in ("p50", "p90", "p99", "mean")
        }
        latency["max"] = max((h.latency_ms["max"] for h in halves), default=0.0)
        return cls(
            duration_s=sum(h.duration_s for h in halves),
            requests=requests,
            entries=sum(h.entries for h in halves),
            sent=sum(h.sent for h in halves),
            statuses=statuses,
            errors=errors,
            latency_ms=latency,
            exhausted_threads=sum(h.exhausted_threads for h in halves),
            cpu_s=sum(h.cpu_s for h in halves),
            connections=halves[0].connections if halves else 0,
            threads=halves[0].threads if halves else 0,
            halves=list(halves),
        )

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "connections": self.connections,
            "threads": self.threads,
            "elapsed_s": round(self.duration_s, 3),
            "entries": self.entries,
            "entries_per_s": round(self.entries_per_s, 1),
            "responses": self.requests,
            "responses_per_s": round(self.requests_per_s, 1),
            "sent": self.sent,
            "unanswered_at_end": self.unanswered,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": self.errors,
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
            "wrk_cpu_s": round(self.cpu_s, 3),
        }
        if self.recorded is not None:
            data["recorded_while_running"] = {
                "entries": self.recorded,
                "window_s": round(self.recorded_window_s, 3),
                "entries_per_s": round(self.recorded_per_s, 1),
            }
        if self.halves:
            data["halves"] = [half.as_json() for half in self.halves]
        return data


def parse_wrk_output(output: str) -> WrkRun:
    """The figures of the script's ``done()`` line in wrk's output; BenchError without one."""
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise BenchError(f"no figures in wrk's output:\n{output[-2000:]}")
    data = json.loads(line[len(MARKER) :])
    latency_us: Mapping[str, float] = data["latency_us"]
    return WrkRun(
        duration_s=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        entries=int(data["entries"]),
        sent=int(data["sent"]),
        statuses={str(k): int(v) for k, v in data["statuses"].items()},
        errors={k: int(v) for k, v in data["errors"].items() if v},
        latency_ms={k: v / 1e3 for k, v in latency_us.items()},
        exhausted_threads=int(data["exhausted_threads"]),
    )


def wrk_executable() -> Path:
    """wrk on the PATH, or BenchError naming how to get it."""
    found = shutil.which("wrk")
    if found is None:
        raise BenchError(
            "wrk is not installed: `make bench-deps` installs Debian's wrk "
            "(apt-get install wrk), or `make bench-api` runs this benchmark with it"
        )
    return Path(found)


def wrk_threads(connections: int) -> int:
    return max(1, min(WRK_THREADS_MAX, connections))


def wrk_arguments(
    base_url: str, script: Path, request_files: Path, *, connections: int, seconds: int
) -> list[str]:
    """wrk's command line (without the executable): the script gets the request files' base."""
    return [
        "--threads",
        str(wrk_threads(connections)),
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        f"{WRK_TIMEOUT_S}s",
        "--script",
        str(script),
        base_url + "/",
        "--",
        str(request_files),
    ]


def write_script(folder: Path) -> Path:
    path = folder / "replay.lua"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(
    executable: Path,
    base_url: str,
    script: Path,
    request_files: Path,
    *,
    connections: int,
    seconds: int,
) -> WrkRun:
    """One wrk run; its figures and its own CPU (from the rusage of the children we waited
    for: no other child of this process ends meanwhile)."""
    before = _children_cpu_s()
    process = await asyncio.create_subprocess_exec(
        str(executable),
        *wrk_arguments(base_url, script, request_files, connections=connections, seconds=seconds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    cpu_s = _children_cpu_s() - before
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"wrk failed ({process.returncode}):\n{text[-2000:]}")
    parsed = parse_wrk_output(text)
    return WrkRun(
        duration_s=parsed.duration_s,
        requests=parsed.requests,
        entries=parsed.entries,
        sent=parsed.sent,
        statuses=parsed.statuses,
        errors=parsed.errors,
        latency_ms=parsed.latency_ms,
        exhausted_threads=parsed.exhausted_threads,
        cpu_s=cpu_s,
        connections=connections,
        threads=wrk_threads(connections),
    )
