"""The API benchmark's run: the bench databases and coalition made, the server started, API,
service and pgbench timed in halves around pgbench, the invariants checked, everything dropped."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.bench.api.report import ApiBenchReport
from clearhouse.bench.api.server import API_DATABASE, API_PGBENCH_DATABASE, ApiServer, backend_pids
from clearhouse.bench.api.traffic import (
    ApiRun,
    ClientFactory,
    PartnerApi,
    drive_api,
    partner_clients,
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
from clearhouse.bench.report import (
    machine_facts,
    timestamp,
)
from clearhouse.bench.servers import (
    PGBENCH_SCALE,
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
                async with ApiServer(server, Path(temp), progress) as api:
                    clients = await partner_clients(client_factory, api, keys, key_ids)
                    try:
                        result = await timed_runs(
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
class TimedRuns:
    api_halves: list[ApiRun]
    service_halves: list[Throughput]
    pgbench_tps: float
    cpu: CpuUse
    service_cpu: CpuUse
    posted: int


async def timed_runs(
    server: Server,
    pgbench: Path,
    api: ApiServer,
    clients: Mapping[str, PartnerApi],
    database: Database,
    partner_ids: Sequence[str],
    member_ids: Sequence[str],
    *,
    concurrency: int,
    workers: int,
    seconds: int,
    progress: Callable[[str], None],
) -> TimedRuns:
    """Warm-ups, then API, service, pgbench, service, API: the halves share one centre in time."""
    service = service_post(bench_ledger(database), partner_ids, member_ids)
    posted = 0
    progress(f"warming up: API and service for {WARMUP_SECONDS:g} s each")
    posted += (await drive_api(clients, member_ids, "warmup", concurrency, WARMUP_SECONDS)).accepted
    posted += (await drive(service, "service-warmup", workers, WARMUP_SECONDS)).entries

    half = seconds / 2
    api_halves: list[ApiRun] = []
    service_halves: list[Throughput] = []
    cpu = service_cpu = CpuUse()

    async def sample() -> CpuSample:
        return cpu_sample(api.pid, await backend_pids(database))

    async def api_half(number: int) -> None:
        nonlocal cpu
        progress(
            f"signed API: {concurrency} tasks for {half:g} s (half {number}); "
            f"server workers (pids) {', '.join(map(str, api.worker_pids())) or '?'}"
        )
        await checkpoint(server)
        before = await sample()
        run = await drive_api(clients, member_ids, f"api-{number}", concurrency, half)
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
    return TimedRuns(api_halves, service_halves, tps, cpu, service_cpu, posted)
