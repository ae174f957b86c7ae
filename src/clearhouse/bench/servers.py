"""The PostgreSQL server a benchmark runs on, its bench databases, and pgbench beside it.

Every benchmark resolves the server from the settings (``DATABASE_URL``, or the embedded
``pgserver`` one), works in databases of its own that it makes afresh and drops at the end, and
measures pgbench's built-in TPC-B with the pgbench that the ``pgserver`` wheel ships, so that its
figures stand next to what this machine's PostgreSQL does without any Clearhouse code.
"""

from __future__ import annotations

import asyncio
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
from sqlalchemy.engine import URL, make_url

from clearhouse.config import Settings
from clearhouse.storage.engine import resolve_database_url

PGBENCH_DATABASE: Final = "clearhouse_pgbench"
PGBENCH_SCALE: Final = 10
PGBENCH_THREADS: Final = 2

_SERVER_SETTINGS: Final = (
    "max_connections",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_level",
)
_TPS = re.compile(r"^tps = ([0-9]+(?:\.[0-9]+)?) \(without initial connection time\)", re.M)
_TPS_ANY = re.compile(r"^tps = ([0-9]+(?:\.[0-9]+)?)", re.M)


class BenchError(Exception):
    """The benchmark could not run (pgbench missing or failing, server unreachable)."""


@dataclass(frozen=True, slots=True)
class Server:
    """The PostgreSQL server the benchmark runs on, as a SQLAlchemy URL of any one database."""

    url: URL
    embedded: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Server:
        return cls(make_url(resolve_database_url(settings)), settings.database_url is None)

    def sqlalchemy_url(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def dsn(self, database: str | None = None) -> str:
        """A plain libpq DSN for asyncpg; the URL's own database when ``database`` is None."""
        url = self.url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    @property
    def host(self) -> str | None:
        """The host, or the socket directory of the ``host`` query parameter (embedded)."""
        query_host = self.url.query.get("host")
        if isinstance(query_host, str) and query_host:
            return query_host
        return self.url.host

    def pgbench_options(self) -> list[str]:
        options = ["-U", self.url.username or "postgres"]
        if self.host:
            options += ["-h", self.host]
        if self.url.port:
            options += ["-p", str(self.url.port)]
        return options

    def pgbench_environment(self) -> dict[str, str] | None:
        """The child's environment: ours, plus the password when the URL holds one."""
        if not self.url.password:
            return None
        return {**os.environ, "PGPASSWORD": str(self.url.password)}

    def describe(self) -> str:
        if self.embedded:
            return "embedded (pgserver, Unix socket)"
        return f"{self.url.host or self.host}:{self.url.port or 5432}"


async def server_facts(server: Server) -> dict[str, object]:
    """``version`` and the settings that bear on write throughput; BenchError if unreachable."""
    try:
        connection = await asyncpg.connect(server.dsn())
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot reach PostgreSQL at {server.describe()}: {exc}") from exc
    try:
        facts: dict[str, object] = {"version": await connection.fetchval("SHOW server_version")}
        for row in await connection.fetch(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])",
            list(_SERVER_SETTINGS),
        ):
            unit = row["unit"] or ""
            facts[row["name"]] = f"{row['setting']}{' x ' + unit if unit else ''}"
        return facts
    finally:
        await connection.close()


async def recreate_database(server: Server, name: str) -> None:
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(server: Server, name: str) -> None:
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def copy_database(server: Server, source: str, target: str) -> None:
    """``target`` afresh as a file copy of ``source`` (nobody may be connected to ``source``)."""
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await connection.execute(
            f'CREATE DATABASE "{target}" TEMPLATE "{source}" STRATEGY FILE_COPY'
        )
    finally:
        await connection.close()


async def checkpoint(server: Server) -> None:
    """Start each run with clean buffers, so one run's dirty pages do not slow the next."""
    connection = await asyncpg.connect(server.dsn())
    try:
        await connection.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass  # not a superuser: the runs go without
    finally:
        await connection.close()


def pgbench_executable() -> Path:
    """The pgbench shipped in the ``pgserver`` wheel."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as under root); the fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

    path = Path(str(pgserver.__file__)).parent / "pginstall" / "bin" / "pgbench"
    if not path.is_file():
        raise BenchError(f"pgbench is not where the pgserver wheel keeps it: {path}")
    return path


def parse_pgbench_tps(output: str) -> float:
    match = _TPS.search(output) or _TPS_ANY.search(output)
    if match is None:
        raise BenchError(f"no tps in pgbench's output:\n{output[-2000:]}")
    return float(match.group(1))


def pgbench_threads(clients: int) -> int:
    return min(PGBENCH_THREADS, clients)


async def pgbench_init(executable: Path, server: Server, database: str = PGBENCH_DATABASE) -> None:
    """Fill ``database`` (made beforehand) with TPC-B's tables at ``PGBENCH_SCALE``."""
    await run_pgbench(executable, server, ["-i", "-q", "-s", str(PGBENCH_SCALE)], database)


async def pgbench_tpcb(
    executable: Path,
    server: Server,
    *,
    clients: int,
    seconds: int,
    database: str = PGBENCH_DATABASE,
) -> float:
    """Transactions per second of the built-in TPC-B, ``clients`` connections for ``seconds``."""
    output = await run_pgbench(
        executable,
        server,
        ["-c", str(clients), "-j", str(pgbench_threads(clients)), "-T", str(seconds), "-n"],
        database,
    )
    return parse_pgbench_tps(output)


async def run_pgbench(
    executable: Path, server: Server, arguments: list[str], database: str = PGBENCH_DATABASE
) -> str:
    """pgbench with ``arguments`` on ``database``; its output, or BenchError."""
    process = await asyncio.create_subprocess_exec(
        str(executable),
        *arguments,
        *server.pgbench_options(),
        database,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=server.pgbench_environment(),
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"pgbench {' '.join(arguments)} failed:\n{text[-2000:]}")
    return text
