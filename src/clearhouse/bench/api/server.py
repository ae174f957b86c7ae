"""The server an API benchmark sends to: a real ``clearhouse serve --workers 2`` process on a
free loopback port, on the bench database, with a coalition key made once before it starts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

import httpx

from clearhouse.bench.cpu import child_pids
from clearhouse.bench.servers import (
    BenchError,
    Server,
)
from clearhouse.config import Settings
from clearhouse.crypto.ed25519 import load_or_create_private_key, public_bytes
from clearhouse.services.database import Database

API_DATABASE: Final = "clearhouse_bench_api"
API_PGBENCH_DATABASE: Final = "clearhouse_pgbench_api"
SERVER_WORKERS: Final = 2
SERVER_HOST: Final = "127.0.0.1"
READY_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 20.0

DEFAULT_OUT: Final = Path("reports") / "bench-api.json"


class ApiServer:
    """``clearhouse serve --workers 2`` on a free port, on the bench database, until exit."""

    def __init__(self, server: Server, folder: Path, progress: Callable[[str], None]) -> None:
        self.port = free_port()
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
            # Outside sandbox mode the server needs a master key; the bench database is
            # thrown away at the end, so a key of its own, made for this run, serves.
            "CLEARHOUSE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
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

    async def __aenter__(self) -> ApiServer:
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SERVER_HOST, 0))
        return int(probe.getsockname()[1])


async def backend_pids(database: Database) -> list[int]:
    """The PostgreSQL backends connected to the bench database (the server's pools, ours)."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            API_DATABASE,
        )
    return [int(row["pid"]) for row in rows]
