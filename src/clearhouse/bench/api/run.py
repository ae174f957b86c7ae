"""The API benchmark's run: the bench databases and coalition made, the server started, the timed
runs in their order, the entries counted and the invariants checked, everything dropped."""

from __future__ import annotations

import base64
import dataclasses
import functools
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.bench.api.presigned import (
    BATCH_PATH,
    PartnerKey,
    Presigner,
    batches,
    singles,
    write_request_files,
)
from clearhouse.bench.api.report import ApiBenchPlan, ApiBenchReport
from clearhouse.bench.api.server import API_DATABASE, API_PGBENCH_DATABASE, ApiServer, backend_pids
from clearhouse.bench.api.traffic import (
    ApiRun,
    ClientFactory,
    PartnerApi,
    drive_api,
    partner_clients,
)
from clearhouse.bench.api.wrk import (
    WrkRun,
    run_wrk,
    write_script,
    wrk_executable,
    wrk_threads,
)
from clearhouse.bench.cpu import CpuSample, CpuUse, cpu_sample
from clearhouse.bench.ledger import (
    WARMUP_SECONDS,
    Throughput,
    bench_ids,
    bench_ledger,
    drive,
    prepare,
    service_post,
)
from clearhouse.bench.report import machine_facts, timestamp
from clearhouse.bench.servers import (
    PGBENCH_SCALE,
    BenchError,
    Server,
    checkpoint,
    drop_database,
    pgbench_executable,
    pgbench_init,
    pgbench_tpcb,
    recreate_database,
    server_facts,
)
from clearhouse.config import Settings
from clearhouse.crypto.ed25519 import public_bytes
from clearhouse.services import access
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store

CALIBRATION_SECONDS: Final = 2
CALIBRATION_REQUESTS: Final = 3_000
SIGNED_MARGIN: Final = 2.0
"""Requests signed for a run: this many times what the calibration says it can send."""
BATCH_MARGIN: Final = 20.0
"""Batch items signed for a run: this many times the single requests' rate (twice the goal)."""
REQUESTS_MAX: Final = 200_000
BATCH_ITEMS_MAX: Final = 400_000
BATCH_SIZES: Final = (100, 1_000)
BATCH_CONNECTIONS: Final = 4
FRESHNESS_MARGIN_S: Final = 30
"""Room for wrk's start and a server's clock a little ahead of ours."""


async def run_api_bench(
    settings: Settings,
    client_factory: ClientFactory,
    *,
    connections: int,
    latency_connections: int,
    concurrency: int,
    workers: int,
    seconds: int,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    progress: Callable[[str], None] = lambda _: None,
) -> ApiBenchReport:
    """Set up, start the server, run every timed run; stop and drop everything."""
    wrk = wrk_executable()
    server = Server.from_settings(settings)
    pgbench = pgbench_executable()
    facts = await server_facts(server)
    partner_ids, member_ids = bench_ids()
    plan = ApiBenchPlan(
        connections=connections,
        latency_connections=latency_connections,
        batch_connections=BATCH_CONNECTIONS,
        batch_sizes=list(batch_sizes),
        concurrency=concurrency,
        workers=workers,
        seconds=seconds,
    )
    try:
        progress(f"creating {API_DATABASE} and {API_PGBENCH_DATABASE} on {server.describe()}")
        await recreate_database(server, API_DATABASE)
        await recreate_database(server, API_PGBENCH_DATABASE)
        progress(f"pgbench -i -s {PGBENCH_SCALE}")
        await pgbench_init(pgbench, server, API_PGBENCH_DATABASE)
        database = Database.for_url(server.sqlalchemy_url(API_DATABASE), pool_size=workers)
        try:
            seed = await prepare(database, partner_ids, member_ids, workers, progress)
            keys = {partner_id: Ed25519PrivateKey.generate() for partner_id in partner_ids}
            key_ids = {
                partner_id: await access.add_key(
                    database, partner_id, base64.b64encode(public_bytes(key)).decode()
                )
                for partner_id, key in keys.items()
            }
            with tempfile.TemporaryDirectory(prefix="clearhouse-bench-api-") as temp:
                folder = Path(temp)
                async with ApiServer(server, folder, progress) as api:
                    clients = await partner_clients(client_factory, api, keys, key_ids)
                    presigner = Presigner(
                        api.base_url,
                        {pid: PartnerKey(key_ids[pid], key) for pid, key in keys.items()},
                    )
                    runs = TimedRuns(
                        server, pgbench, api, clients, database, presigner, wrk, folder, plan
                    )
                    try:
                        load_before = os.getloadavg()[0]
                        await runs.run(partner_ids, member_ids, progress)
                        load_after = os.getloadavg()[0]
                    finally:
                        presigner.close()
                        for client in clients.values():
                            await client.aclose()
            # The server has stopped: whatever it was still posting when a run ended is in.
            progress("checking the ledger's invariants")
            async with database.driver_connection() as connection:
                for size, (began, ended) in runs.windows.items():
                    recorded = await connection.fetchval(
                        "SELECT count(*) FROM entries WHERE recorded_at >= $1 AND recorded_at < $2",
                        began,
                        ended,
                    )
                    runs.batches[size] = dataclasses.replace(
                        runs.batches[size],
                        recorded=int(recorded),
                        recorded_window_s=(ended - began).total_seconds(),
                    )
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
        settings=plan,
        server=api.description,
        seed=seed,
        wrk_throughput=WrkRun.total(runs.wrk_halves),
        wrk_latency=runs.wrk_latency,
        python_client=ApiRun.total(runs.python_halves),
        python_halves=runs.python_halves,
        service=Throughput.total(runs.service_halves),
        pgbench_tps=runs.pgbench_tps,
        batches=runs.batches,
        batch_available=runs.batch_available,
        cpu=runs.cpu,
        entries_counted=seed.entries + runs.posted,
        entries_unanswered_at_most=runs.unanswered_items,
        entries_in_database=in_database,
        invariant_violations=violations,
        load_average_1m=(load_before, load_after),
    )


def check_freshness(signing_s: float, seconds: int, window_s: int) -> None:
    """The first request signed must still be fresh when the run's last one goes out: the
    server refuses a ``created`` older than its signature window (``stale_signature``)."""
    if signing_s + seconds + FRESHNESS_MARGIN_S > window_s:
        raise BenchError(
            f"signing took {signing_s:.0f} s and the run takes {seconds} s: the first requests "
            f"would be older than the server's signature window ({window_s} s) when sent; "
            "run shorter (--seconds)"
        )


async def batch_endpoint_served(base_url: str) -> bool:
    """Whether the server's OpenAPI document lists the batch endpoint."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        response = await http.get("/schema/openapi.json")
    if response.status_code != 200:
        return False
    paths = response.json().get("paths", {})
    return isinstance(paths, dict) and BATCH_PATH in paths


@dataclass
class TimedRuns:
    """The timed runs of one benchmark, in order, and what each achieved."""

    server: Server
    pgbench: Path
    api: ApiServer
    clients: Mapping[str, PartnerApi]
    database: Database
    presigner: Presigner
    wrk: Path
    folder: Path
    plan: ApiBenchPlan
    wrk_halves: list[WrkRun] = field(default_factory=list)
    wrk_latency: WrkRun | None = None
    python_halves: list[ApiRun] = field(default_factory=list)
    service_halves: list[Throughput] = field(default_factory=list)
    pgbench_tps: float = 0.0
    batches: dict[int, WrkRun] = field(default_factory=dict)
    batch_available: bool = False
    cpu: dict[str, CpuUse] = field(default_factory=dict)
    windows: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    """Each batch run's time on the ledger's clock, from wrk's start to its end."""
    posted: int = 0
    """Entries answered as accepted, warm-ups included."""
    unanswered_items: int = 0
    """At most as many entries more may have been posted by requests unanswered at a run's end."""
    _script: Path | None = None

    async def sample(self) -> CpuSample:
        return cpu_sample(self.api.pid, await backend_pids(self.database))

    def _add_cpu(self, name: str, use: CpuUse) -> None:
        self.cpu[name] = self.cpu.get(name, CpuUse()) + use

    async def run(
        self,
        partner_ids: Sequence[str],
        member_ids: Sequence[str],
        progress: Callable[[str], None],
    ) -> None:
        """Warm-ups and calibration; then wrk, Python client, service, pgbench, service, Python
        client, wrk (halves sharing one centre in time); the latency run; the batches."""
        plan = self.plan
        self._script = write_script(self.folder)
        service = service_post(bench_ledger(self.database), partner_ids, member_ids)
        progress(f"warming up: Python client and service for {WARMUP_SECONDS:g} s each")
        self.posted += (
            await drive_api(self.clients, member_ids, "warmup", plan.concurrency, WARMUP_SECONDS)
        ).accepted
        self.posted += (
            await drive(service, "service-warmup", plan.workers, WARMUP_SECONDS)
        ).entries
        progress(
            f"calibrating: {CALIBRATION_REQUESTS:,} pre-signed requests, wrk at "
            f"{plan.connections} connections for up to {CALIBRATION_SECONDS} s"
        )
        calibration, _, _ = await self._replay(
            "calibration",
            lambda count: singles(self.presigner, member_ids, count, "calibration"),
            CALIBRATION_REQUESTS,
            plan.connections,
            CALIBRATION_SECONDS,
            retry=False,
        )
        rate = calibration.entries_per_s
        if calibration.entries == 0:
            raise BenchError(
                f"the server accepted none of the pre-signed requests: {calibration.statuses}"
            )
        half = max(1, plan.seconds // 2)

        def signed_for(seconds: int) -> int:
            return min(
                REQUESTS_MAX, math.ceil(rate * seconds * SIGNED_MARGIN) + 4 * plan.connections
            )

        async def wrk_half(number: int) -> None:
            run, use, _ = await self._replay(
                f"wrk-{number}",
                lambda count: singles(self.presigner, member_ids, count, f"wrk-{number}"),
                signed_for(half),
                plan.connections,
                half,
                progress=progress,
            )
            self.wrk_halves.append(run)
            self._add_cpu("wrk_throughput", use)

        async def python_half(number: int) -> None:
            progress(f"Python client: {plan.concurrency} tasks for {half} s (half {number})")
            await checkpoint(self.server)
            before = await self.sample()
            run = await drive_api(self.clients, member_ids, f"api-{number}", plan.concurrency, half)
            self._add_cpu("python_client", (await self.sample()).since(before))
            self.python_halves.append(run)
            self.posted += run.accepted

        async def service_half(number: int) -> None:
            progress(f"ledger service, spread: {plan.workers} workers for {half} s (half {number})")
            await checkpoint(self.server)
            before = await self.sample()
            run = await drive(service, f"service-{number}", plan.workers, half)
            self._add_cpu("ledger_service", (await self.sample()).since(before))
            self.service_halves.append(run)
            self.posted += run.entries

        await wrk_half(1)
        await python_half(1)
        await service_half(1)
        await checkpoint(self.server)
        progress(f"pgbench TPC-B: {plan.workers} clients for {plan.seconds} s")
        self.pgbench_tps = await pgbench_tpcb(
            self.pgbench,
            self.server,
            clients=plan.workers,
            seconds=plan.seconds,
            database=API_PGBENCH_DATABASE,
        )
        await service_half(2)
        await python_half(2)
        await wrk_half(2)

        self.wrk_latency, use, _ = await self._replay(
            "latency",
            lambda count: singles(self.presigner, member_ids, count, "latency"),
            signed_for(plan.seconds),
            plan.latency_connections,
            plan.seconds,
            progress=progress,
        )
        self.cpu["wrk_latency"] = use

        self.batch_available = await batch_endpoint_served(self.api.base_url)
        if not self.batch_available:
            progress(f"the server has no {BATCH_PATH}: no batch runs")
            return
        for size in plan.batch_sizes:
            items = min(BATCH_ITEMS_MAX, math.ceil(rate * plan.seconds * BATCH_MARGIN))
            count = max(2 * plan.batch_connections, math.ceil(items / size))
            run, use, window = await self._replay(
                f"batch-{size}",
                functools.partial(self._batches, member_ids, size),
                count,
                plan.batch_connections,
                plan.seconds,
                progress=progress,
                items_per_request=size,
            )
            self.batches[size] = run
            self.windows[size] = window
            self.cpu[f"batch_{size}"] = use

    def _batches(self, member_ids: Sequence[str], size: int, count: int) -> Iterator[bytes]:
        return batches(self.presigner, member_ids, count, size, f"batch-{size}")

    async def _replay(
        self,
        name: str,
        requests: Callable[[int], Iterator[bytes]],
        count: int,
        connections: int,
        seconds: int,
        *,
        retry: bool = True,
        progress: Callable[[str], None] = lambda _: None,
        items_per_request: int = 1,
    ) -> tuple[WrkRun, CpuUse, tuple[datetime, datetime]]:
        """Sign ``count`` requests, then replay them with wrk; once more with twice as many if
        a thread ran out before the time was up. The run, the CPU it took, and its time on the
        ledger's clock."""
        assert self._script is not None
        base = self.folder / f"requests-{name}"
        for attempt in (1, 2):
            progress(f"{name}: signing {count:,} requests")
            signing_began = time.monotonic()
            write_request_files(requests(count), base, wrk_threads(connections))
            check_freshness(time.monotonic() - signing_began, seconds, self.window_s)
            progress(f"{name}: wrk at {connections} connections for {seconds} s")
            await checkpoint(self.server)
            before = await self.sample()
            began = await self._ledger_now()
            run = await run_wrk(
                self.wrk,
                self.api.base_url,
                self._script,
                base,
                connections=connections,
                seconds=seconds,
            )
            ended = await self._ledger_now()
            use = (await self.sample()).since(before)
            self.posted += run.entries
            self.unanswered_items += run.unanswered * items_per_request
            if not run.exhausted or not retry or attempt == 2:
                break
            progress(f"{name}: the signed requests ran out; signing twice as many")
            count *= 2
        # wrk is the load generator here; this process only waited for it.
        use = dataclasses.replace(use, load_generator_s=use.load_generator_s + run.cpu_s)
        return run, use, (began, ended)

    @property
    def window_s(self) -> int:
        window = self.api.description["signature_window_s"]
        assert isinstance(window, int)
        return window

    async def _ledger_now(self) -> datetime:
        async with self.database.driver_connection() as connection:
            moment: datetime = await connection.fetchval("SELECT ledger_now()")
        return moment
