"""A real ``clearhouse serve`` for the tests that call it as partners do: a sandbox on the run's
database, listening on a free port of its own until the test ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx
import pytest

CLEARHOUSE: Final = str(Path(sys.executable).parent / "clearhouse")
READY_TIMEOUT_S: Final = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sandbox_environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of ``clearhouse`` commands on the run's database, in sandbox mode."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(tmp_path / "data"),
        "CLEARHOUSE_LOG_LEVEL": "WARNING",
        # The run's database is every test's: a delivery worker here would take theirs.
        "CLEARHOUSE_WEBHOOK_WORKERS": "0",
    }


@contextmanager
def serving(
    environment: dict[str, str], folder: Path, *arguments: str, stops_cleanly: bool = False
) -> Iterator[str]:
    """``clearhouse serve`` (with ``arguments``) on a free port, once it is ready: its URL,
    which is its ``CLEARHOUSE_PUBLIC_BASE_URL`` too, so signatures over that URL verify. It is
    stopped on the way out (with ``stops_cleanly``, it must exit 0 then: a server of several
    workers does, a single uvicorn process ends by the signal); its log, ``serve.log`` in
    ``folder``, tells why it did not start or stop."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environment["CLEARHOUSE_PUBLIC_BASE_URL"] = url
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLEARHOUSE, "serve", "--port", str(port), *arguments],
            env=environment,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                raise AssertionError(log_path.read_text())
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert not stops_cleanly or process.returncode == 0, log_path.read_text()


@pytest.fixture
def sandbox_server(sandbox_environment: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The URL of ``clearhouse serve`` once it is ready; ``CLEARHOUSE_PUBLIC_BASE_URL`` is set
    to it in ``sandbox_environment``, so signatures over that URL verify."""
    with serving(sandbox_environment, tmp_path) as url:
        yield url
