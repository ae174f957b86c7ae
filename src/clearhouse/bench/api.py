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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import random
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.bench.cpu import CpuSample, CpuUse, child_pids, cpu_sample
from clearhouse.bench.ledger import (
    ISSUE_SHARE,
    MEMBERS,
    PARTNERS,
    POINTS_MAX,
    SEED_POINTS,
    WARMUP_SECONDS,
    Throughput,
    bench_ids,
    bench_ledger,
    drive,
    pick,
    prepare,
    service_post,
)
from clearhouse.bench.report import (
    Ceiling,
    Ratio,
    check_lines,
    headline,
    machine_facts,
    ratio,
    timestamp,
    write_json,
)
from clearhouse.bench.servers import (
    PGBENCH_SCALE,
    BenchError,
    Server,
    checkpoint,
    drop_database,
    pgbench_executable,
    pgbench_init,
    pgbench_threads,
    pgbench_tpcb,
    recreate_database,
    server_facts,
)
from clearhouse.config import Settings
from clearhouse.crypto.ed25519 import load_or_create_private_key, public_bytes
from clearhouse.services import access
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store

API_DATABASE: Final = "clearhouse_bench_api"
API_PGBENCH_DATABASE: Final = "clearhouse_pgbench_api"
SERVER_WORKERS: Final = 2
SERVER_HOST: Final = "127.0.0.1"
READY_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 20.0
CLIENT_TIMEOUT_S: Final = 10.0
DEFAULT_OUT: Final = Path("reports") / "bench-api.json"

GOAL_API_OVER_PGBENCH: Final = 0.35
GOAL_P99_MS: Final = 50.0

SAME_MACHINE_NOTE: Final = (
    "The load generator (this process: one asyncio loop, the partner client over httpx) runs on "
    "the same machine as the server's workers and PostgreSQL and takes CPU from them; latencies "
    "are as the client sees them, its signing, receipt check and queueing included."
)


class PartnerApi(Protocol):
    """What the benchmark needs of ``clearhouse.client.AsyncPartnerClient``."""

    async def issue(self, member_id: str, points: int, *, reference: str) -> object: ...

    async def redeem(self, member_id: str, points: int, *, reference: str) -> object: ...

    async def coalition_keys(self) -> dict[str, bytes]: ...

    async def aclose(self) -> None: ...


class ClientFactory(Protocol):
    """``AsyncPartnerClient`` itself: the CLI passes the class in."""

    def __call__(
        self,
        base_url: str,
        *,
        key_id: str,
        private_key: Ed25519PrivateKey,
        coalition_keys: Mapping[str, bytes] | None = None,
        timeout_s: float = ...,
    ) -> PartnerApi: ...


@dataclass(slots=True)
class ApiRun:
    """What the tasks of one timed API run achieved."""

    latencies_s: list[float] = field(default_factory=list)
    """One per accepted (201) request."""
    refused: int = 0
    """409 insufficient_points."""
    errors: Counter[str] = field(default_factory=Counter)
    """Every other failure, by problem code or exception type."""
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return len(self.latencies_s)

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def total(cls, runs: Sequence[ApiRun]) -> ApiRun:
        errors: Counter[str] = Counter()
        for run in runs:
            errors.update(run.errors)
        return cls(
            [s for run in runs for s in run.latencies_s],
            sum(run.refused for run in runs),
            errors,
            sum(run.elapsed_s for run in runs),
        )

    def latency_ms(self) -> dict[str, float]:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}

        def rank(q: float) -> float:  # nearest rank
            return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1e3

        return {
            "p50": rank(0.50),
            "p90": rank(0.90),
            "p99": rank(0.99),
            "max": ordered[-1] * 1e3,
            "mean": sum(ordered) / len(ordered) * 1e3,
        }

    def as_json(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "errors": dict(self.errors),
            "elapsed_s": round(self.elapsed_s, 3),
            "accepted_per_s": round(self.accepted_per_s, 1),
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms().items()},
        }


@dataclass(frozen=True, slots=True)
class ApiBenchReport:
    timestamp: str
    machine: dict[str, object]
    concurrency: int
    workers: int
    seconds: int
    server: dict[str, object]
    seed: Throughput
    api: ApiRun
    api_halves: list[ApiRun]
    service: Throughput
    pgbench_tps: float
    cpu: CpuUse
    service_cpu: CpuUse
    entries_posted: int
    entries_in_database: int
    invariant_violations: list[str]

    @property
    def ratios(self) -> list[Ratio]:
        return [
            Ratio(
                "api_over_pgbench",
                "signed API / pgbench TPC-B",
                ratio(self.api.accepted_per_s, self.pgbench_tps),
                GOAL_API_OVER_PGBENCH,
                binding=True,
            )
        ]

    @property
    def p99(self) -> Ceiling:
        return Ceiling(
            "p99_latency_ms", "signed API p99 (ms)", self.api.latency_ms()["p99"], GOAL_P99_MS, "ms"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "benchmark": "clearhouse bench api",
            "timestamp": self.timestamp,
            "machine": self.machine,
            "load_generator_on_same_machine": True,
            "note": SAME_MACHINE_NOTE,
            "settings": {
                "concurrency": self.concurrency,
                "workers": self.workers,
                "seconds": self.seconds,
                "server": self.server,
                "client": "clearhouse.client.AsyncPartnerClient (httpx, HTTP/1.1, loopback), "
                "one per partner, pinned coalition key",
                "members": MEMBERS,
                "partners": PARTNERS,
                "mix": {
                    "issue_share": ISSUE_SHARE,
                    "points_per_entry": [1, POINTS_MAX],
                    "seed_points_per_member": SEED_POINTS,
                },
                "order": "API, service, pgbench, service, API (halves around pgbench)",
            },
            "api": self.api.as_json(),
            "ledger_service_entries_per_s": round(self.service.entries_per_s, 1),
            "pgbench_tps": round(self.pgbench_tps, 1),
            "pgbench": {
                "mode": "built-in TPC-B",
                "scale": PGBENCH_SCALE,
                "clients": self.workers,
                "threads": pgbench_threads(self.workers),
            },
            "ratios": {
                **{r.name: r.as_json() for r in self.ratios},
                "api_over_service": round(
                    ratio(self.api.accepted_per_s, self.service.entries_per_s), 3
                ),
                self.p99.name: self.p99.as_json(),
            },
            "cpu_during_api_runs": self.cpu.as_json(self.api.accepted),
            "cpu_during_service_runs": {
                **self.service_cpu.as_json(self.service.entries),
                "note": "load_generator is this process posting through the ledger service "
                "(no HTTP, no signatures); the server is idle then",
            },
            "runs": {
                "seed": self.seed.as_json(),
                "api_halves": [half.as_json() for half in self.api_halves],
                "ledger_service": self.service.as_json(),
            },
            "checks": {
                "entries_posted": self.entries_posted,
                "entries_in_database": self.entries_in_database,
                "invariant_violations": self.invariant_violations,
            },
        }


async def run_api_bench(
    settings: Settings,
    client_factory: ClientFactory,
    *,
    concurrency: int,
    workers: int,
    seconds: int,
    progress: Callable[[str], None] = lambda _: None,
) -> ApiBenchReport:
    """Set up, start the server, run the API, service and pgbench; stop and drop everything."""
    server = Server.from_settings(settings)
    pgbench = pgbench_executable()
    facts = await server_facts(server)
    partner_ids, member_ids = bench_ids()
    try:
        progress(f"creating {API_DATABASE} and {API_PGBENCH_DATABASE} on {server.describe()}")
        await recreate_database(server, API_DATABASE)
        await recreate_database(server, API_PGBENCH_DATABASE)
        progress(f"pgbench -i -s {PGBENCH_SCALE}")
        await pgbench_init(pgbench, server, API_PGBENCH_DATABASE)
        database = Database.for_url(server.sqlalchemy_url(API_DATABASE), pool_size=workers)
        try:
            seed = await prepare(database, partner_ids, member_ids, workers, progress)
            posted = seed.entries
            keys = {partner_id: Ed25519PrivateKey.generate() for partner_id in partner_ids}
            key_ids = {
                partner_id: await access.add_key(
                    database, partner_id, base64.b64encode(public_bytes(key)).decode()
                )
                for partner_id, key in keys.items()
            }
            with tempfile.TemporaryDirectory(prefix="clearhouse-bench-api-") as temp:
                async with _ApiServer(server, Path(temp), progress) as api:
                    clients = await _clients(client_factory, api, keys, key_ids)
                    try:
                        result = await _timed_runs(
                            server,
                            pgbench,
                            api,
                            clients,
                            database,
                            partner_ids,
                            member_ids,
                            concurrency=concurrency,
                            workers=workers,
                            seconds=seconds,
                            progress=progress,
                        )
                    finally:
                        for client in clients.values():
                            await client.aclose()
            posted += result.posted
            progress("checking the ledger's invariants")
            async with database.driver_connection() as connection:
                violations = await store.invariant_violations(connection)
                in_database = int(await connection.fetchval("SELECT count(*) FROM entries"))
        finally:
            await database.dispose()
    finally:
        progress(f"dropping {API_DATABASE} and {API_PGBENCH_DATABASE}")
        await drop_database(server, API_DATABASE)
        await drop_database(server, API_PGBENCH_DATABASE)

    return ApiBenchReport(
        timestamp=timestamp(),
        machine=machine_facts(server, facts),
        concurrency=concurrency,
        workers=workers,
        seconds=seconds,
        server=api.description,
        seed=seed,
        api=ApiRun.total(result.api_halves),
        api_halves=result.api_halves,
        service=Throughput.total(result.service_halves),
        pgbench_tps=result.pgbench_tps,
        cpu=result.cpu,
        service_cpu=result.service_cpu,
        entries_posted=posted,
        entries_in_database=in_database,
        invariant_violations=violations,
    )


@dataclass(frozen=True, slots=True)
class _Result:
    api_halves: list[ApiRun]
    service_halves: list[Throughput]
    pgbench_tps: float
    cpu: CpuUse
    service_cpu: CpuUse
    posted: int


async def _timed_runs(
    server: Server,
    pgbench: Path,
    api: _ApiServer,
    clients: Mapping[str, PartnerApi],
    database: Database,
    partner_ids: Sequence[str],
    member_ids: Sequence[str],
    *,
    concurrency: int,
    workers: int,
    seconds: int,
    progress: Callable[[str], None],
) -> _Result:
    """Warm-ups, then API, service, pgbench, service, API: the halves share one centre in time."""
    service = service_post(bench_ledger(database), partner_ids, member_ids)
    posted = 0
    progress(f"warming up: API and service for {WARMUP_SECONDS:g} s each")
    posted += (
        await _drive_api(clients, member_ids, "warmup", concurrency, WARMUP_SECONDS)
    ).accepted
    posted += (await drive(service, "service-warmup", workers, WARMUP_SECONDS)).entries

    half = seconds / 2
    api_halves: list[ApiRun] = []
    service_halves: list[Throughput] = []
    cpu = service_cpu = CpuUse()

    async def sample() -> CpuSample:
        return cpu_sample(api.pid, await _backend_pids(database))

    async def api_half(number: int) -> None:
        nonlocal cpu
        progress(
            f"signed API: {concurrency} tasks for {half:g} s (half {number}); "
            f"server workers (pids) {', '.join(map(str, api.worker_pids())) or '?'}"
        )
        await checkpoint(server)
        before = await sample()
        run = await _drive_api(clients, member_ids, f"api-{number}", concurrency, half)
        cpu = cpu + (await sample()).since(before)
        api_halves.append(run)

    async def service_half(number: int) -> None:
        nonlocal service_cpu
        progress(f"ledger service, spread: {workers} workers for {half:g} s (half {number})")
        await checkpoint(server)
        before = await sample()
        service_halves.append(await drive(service, f"service-{number}", workers, half))
        service_cpu = service_cpu + (await sample()).since(before)

    await api_half(1)
    await service_half(1)
    await checkpoint(server)
    progress(f"pgbench TPC-B: {workers} clients for {seconds} s")
    tps = await pgbench_tpcb(
        pgbench, server, clients=workers, seconds=seconds, database=API_PGBENCH_DATABASE
    )
    await service_half(2)
    await api_half(2)
    posted += sum(run.accepted for run in api_halves)
    posted += sum(run.entries for run in service_halves)
    return _Result(api_halves, service_halves, tps, cpu, service_cpu, posted)


async def _drive_api(
    clients: Mapping[str, PartnerApi],
    member_ids: Sequence[str],
    name: str,
    concurrency: int,
    seconds: float,
) -> ApiRun:
    """``concurrency`` tasks sending issues and redeems until ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    partner_ids = list(clients)
    run = ApiRun()
    start = loop.time()
    deadline = start + seconds

    async def task(number: int) -> None:
        rng = random.Random(f"{name}-{number}")
        while loop.time() < deadline:
            partner_id, member_id, points, issue = pick(rng, partner_ids, member_ids)
            client = clients[partner_id]
            call = client.issue if issue else client.redeem
            began = time.perf_counter()
            try:
                await call(member_id, points, reference="bench")
            except Exception as exc:  # the client's typed problems, transport errors
                code = getattr(exc, "code", None)
                if code == "insufficient_points":
                    run.refused += 1
                else:
                    run.errors[str(code or type(exc).__name__)] += 1
                continue
            run.latencies_s.append(time.perf_counter() - began)

    await asyncio.gather(*(task(n) for n in range(concurrency)))
    run.elapsed_s = loop.time() - start
    return run


async def _clients(
    client_factory: ClientFactory,
    api: _ApiServer,
    keys: Mapping[str, Ed25519PrivateKey],
    key_ids: Mapping[str, str],
) -> dict[str, PartnerApi]:
    """One client per partner, all pinned to the coalition key the server serves."""
    first = next(iter(keys))
    probe = client_factory(
        api.base_url, key_id=key_ids[first], private_key=keys[first], timeout_s=CLIENT_TIMEOUT_S
    )
    try:
        coalition_keys = await probe.coalition_keys()
    finally:
        await probe.aclose()
    if api.coalition_public_key not in coalition_keys.values():
        raise BenchError("the server does not serve the coalition key it was given")
    return {
        partner_id: client_factory(
            api.base_url,
            key_id=key_ids[partner_id],
            private_key=key,
            coalition_keys=coalition_keys,
            timeout_s=CLIENT_TIMEOUT_S,
        )
        for partner_id, key in keys.items()
    }


class _ApiServer:
    """``clearhouse serve --workers 2`` on a free port, on the bench database, until exit."""

    def __init__(self, server: Server, folder: Path, progress: Callable[[str], None]) -> None:
        self.port = _free_port()
        self.base_url = f"http://{SERVER_HOST}:{self.port}"
        self.folder = folder
        self.log_path = folder / "serve.log"
        self.progress = progress
        signing_key_file = folder / "data" / "coalition-signing-key.pem"
        # Made here, once: two workers starting together would each make a key of their own.
        self.coalition_public_key = public_bytes(load_or_create_private_key(signing_key_file))
        self.environment = {
            **os.environ,
            "DATABASE_URL": server.sqlalchemy_url(API_DATABASE),
            "CLEARHOUSE_HOST": SERVER_HOST,
            "CLEARHOUSE_PORT": str(self.port),
            "CLEARHOUSE_PUBLIC_BASE_URL": self.base_url,
            "CLEARHOUSE_LOG_LEVEL": "WARNING",
            "CLEARHOUSE_DATA_DIR": str(folder / "data"),
            "CLEARHOUSE_SIGNING_KEY_FILE": str(signing_key_file),
            "CLEARHOUSE_SANDBOX": "0",
        }
        served = Settings.from_env(self.environment)
        self.description: dict[str, object] = {
            "command": f"clearhouse serve --workers {SERVER_WORKERS} --port <free port>",
            "asgi_server": "uvicorn",
            "workers": SERVER_WORKERS,
            "db_pool_size_per_worker": served.db_pool_size,
            "signature_window_s": served.signature_window_s,
            "log_level": served.log_level,
        }
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        return child_pids(self.pid)

    async def __aenter__(self) -> _ApiServer:
        self.progress(f"starting clearhouse serve --workers {SERVER_WORKERS} on {self.base_url}")
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "clearhouse.cli",
            "serve",
            "--workers",
            str(SERVER_WORKERS),
            "--port",
            str(self.port),
            env=self.environment,
            cwd=self.folder,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._stop()

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            while loop.time() < deadline:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise BenchError(f"clearhouse serve exited:\n{self._log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise BenchError(
            f"clearhouse serve not ready in {READY_TIMEOUT_S:g} s:\n{self._log_tail()}"
        )

    async def _stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            self.progress("stopping the server")
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)  # its own session: the workers go with it
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SERVER_HOST, 0))
        return int(probe.getsockname()[1])


async def _backend_pids(database: Database) -> list[int]:
    """The PostgreSQL backends connected to the bench database (the server's pools, ours)."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            API_DATABASE,
        )
    return [int(row["pid"]) for row in rows]


def write_report(report: ApiBenchReport, path: Path) -> None:
    write_json(report.as_json(), path)


def render(report: ApiBenchReport) -> str:
    """The figures as a plain-text table."""
    api = report.api
    latency = api.latency_ms()
    lines = [
        headline(
            "clearhouse bench api",
            f"{report.concurrency} client tasks, {report.workers} workers and pgbench clients, "
            f"{report.seconds} s per run",
            report.machine,
        ),
        "",
        f"  {'run':<34}{'per second':>12}{'accepted':>11}{'refused':>9}{'errors':>8}",
        f"  {'signed API (HTTP, 2 workers)':<34}{api.accepted_per_s:>12,.1f}"
        f"{api.accepted:>11,}{api.refused:>9,}{sum(api.errors.values()):>8,}",
        f"  {'ledger service, spread':<34}{report.service.entries_per_s:>12,.1f}"
        f"{report.service.entries:>11,}{report.service.refused:>9,}",
        f"  {'pgbench TPC-B (tps)':<34}{report.pgbench_tps:>12,.1f}",
        "",
        f"  signed API latency (ms): p50 {latency['p50']:.1f}, p90 {latency['p90']:.1f}, "
        f"p99 {latency['p99']:.1f}, max {latency['max']:.1f}, mean {latency['mean']:.1f}",
    ]
    if api.errors:
        lines.append(f"  errors: {dict(api.errors)}")
    lines += ["", f"  {'ratio':<34}{'value':>12}   bar"]
    lines += [r.line() for r in report.ratios]
    lines.append(report.p99.line())
    lines.append(
        f"  {'signed API / ledger service':<34}"
        f"{ratio(api.accepted_per_s, report.service.entries_per_s):>12.2f}"
    )
    cores = report.cpu.cores()
    if cores:
        lines += [
            "",
            "  cores busy during the API runs (same machine): "
            f"load generator {cores['load_generator']:.2f}, "
            f"server workers {cores['server_workers']:.2f}, "
            f"PostgreSQL backends {cores['postgresql_backends']:.2f}, "
            f"other {cores['other']:.2f}; all {cores['machine']:.2f} of {os.cpu_count()}",
        ]
        per_request = report.cpu.ms_per_request(api.accepted)
        lines.append(
            "  CPU ms per accepted request: "
            f"load generator {per_request['load_generator']:.2f}, "
            f"server workers {per_request['server_workers']:.2f}, "
            f"PostgreSQL backends {per_request['postgresql_backends']:.2f}"
        )
        per_entry = report.service_cpu.ms_per_request(report.service.entries)
        if per_entry:
            lines.append(
                "  CPU ms per ledger service entry: "
                f"this process {per_entry['load_generator']:.2f}, "
                f"PostgreSQL backends {per_entry['postgresql_backends']:.2f}"
            )
    lines.append("")
    lines += check_lines(
        report.invariant_violations, report.entries_posted, report.entries_in_database
    )
    return "\n".join(lines)
