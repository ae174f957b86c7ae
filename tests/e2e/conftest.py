"""A real ``clearhouse serve`` for the tests that call it as partners do: a sandbox on the run's
database, listening on a free port of its own until the test ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture
def sandbox_server(sandbox_environment: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The URL of ``clearhouse serve`` once it is ready; ``CLEARHOUSE_PUBLIC_BASE_URL`` is set
    to it in ``sandbox_environment``, so signatures over that URL verify."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox_environment["CLEARHOUSE_PUBLIC_BASE_URL"] = url
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [CLEARHOUSE, "serve", "--port", str(port)],
        env=sandbox_environment,
        cwd=tmp_path,
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
            raise AssertionError((tmp_path / "serve.log").read_text())
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
