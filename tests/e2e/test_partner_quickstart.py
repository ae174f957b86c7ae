"""The partner quickstart, as documented: a real server process, the CLI, the example script."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services.builders import contract_toml, unique

REPO = Path(__file__).resolve().parents[2]
CLEARHOUSE = str(Path(sys.executable).parent / "clearhouse")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(tmp_path / "data"),
        "CLEARHOUSE_LOG_LEVEL": "WARNING",
    }


def _cli(environment: dict[str, str], *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [CLEARHOUSE, *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def server(environment: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environment["CLEARHOUSE_PUBLIC_BASE_URL"] = url
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [CLEARHOUSE, "serve", "--port", str(port)],
        env=environment,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
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


def test_a_partner_follows_the_quickstart_against_a_real_server(
    environment: dict[str, str], server: str, tmp_path: Path
) -> None:
    partner_id, member_id = unique("baeckerei"), unique("m")
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / f"{partner_id}.v1.toml").write_text(contract_toml(partner_id))
    _cli(environment, "contracts", "load", "contracts", cwd=tmp_path)
    _cli(environment, "key", "generate", "keys/baeckerei", cwd=tmp_path)
    added = _cli(environment, "key", "add", partner_id, "keys/baeckerei.pub.pem", cwd=tmp_path)
    key_id = re.search(r"key (\S+) added", added)
    assert key_id is not None
    _cli(environment, "member", "enrol", member_id, cwd=tmp_path)

    done = subprocess.run(
        [sys.executable, str(REPO / "docs/examples/partner_quickstart.py")],
        env={
            **environment,
            "CLEARHOUSE_URL": server,
            "KEY_ID": key_id[1],
            "KEY_FILE": str(tmp_path / "keys/baeckerei.pem"),
            "MEMBER_ID": member_id,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("issued 120 points")
    assert lines[0].endswith("balance 120")
    assert lines[1] == "redeemed 20 points, balance 100"
    assert lines[2] == "refused: insufficient_points"
    assert lines[3].startswith("reversed 5 points")
    assert lines[3].endswith("balance 105")
