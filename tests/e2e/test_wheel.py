"""The wheel is all an operator needs: built from this tree, installed into a fresh venv outside
the checkout (with the wheel of the partner client, a distribution it depends on), it migrates a
new database, serves until ``/ready``, and runs the demo.

Offline by design (it passes inside ``unshare -n``): the wheels are built with uv from the local
tree only, and installed with ``--no-deps``; its dependencies come from this run's own venv,
which the fresh venv reads through a ``.pth`` file (one path line, so the checkout's editable
install, itself a ``.pth`` there, is not followed). uv's cache does not hold every dependency's
index page, so a resolving offline install cannot be relied on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from clearhouse.storage.migrate import alembic_config

REPO: Final = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S: Final = 120
COMMAND_TIMEOUT_S: Final = 60
READY_TIMEOUT_S: Final = 30
DEMO_TIMEOUT_S: Final = 300


def _uv() -> str:
    found = REPO / ".tools" / "bin" / "uv"
    if found.exists():
        return str(found)
    on_path = shutil.which("uv")
    assert on_path is not None, "uv is needed to build the wheel (make install puts it in .tools/)"
    return on_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _create_database(database_url: str, name: str) -> None:
    dsn = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(database_url: str, name: str) -> None:
    dsn = make_url(database_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """The ``bin`` folder of a fresh venv, outside the checkout, holding only the wheels."""
    uv = _uv()
    dist = tmp_path / "dist"
    build = [uv, "build", "--all-packages", "--wheel", "--offline", "--no-build-logs"]
    subprocess.run(
        [*build, "--out-dir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT_S,
    )
    (wheel,) = dist.glob("clearhouse-*.whl")
    (client_wheel,) = dist.glob("clearhouse_client-*.whl")
    wheels = [str(wheel), str(client_wheel)]
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--offline", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--offline", "--no-deps", "--python", str(python), *wheels],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    ).stdout.strip()
    dependencies = sysconfig.get_paths()["purelib"]
    Path(site_packages, "clearhouse_dependencies.pth").write_text(f"{dependencies}\n")
    return venv / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder with nothing of the checkout in it."""
    folder = tmp_path / "operator"
    folder.mkdir()
    assert REPO not in folder.parents
    return folder


@pytest.fixture
def new_database(database_url: str) -> Iterator[str]:
    """An empty database of its own on the test server, dropped afterwards."""
    name = f"clearhouse_wheel_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(database_url, name))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_drop_database(database_url, name))


def test_the_installed_wheel_migrates_serves_and_runs_the_demo_outside_the_checkout(
    installed: Path, outside: Path, new_database: str
) -> None:
    clearhouse = str(installed / "clearhouse")
    environment = {
        "PATH": f"{installed}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(outside),
        "DATABASE_URL": new_database,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(outside / "data"),
        "CLEARHOUSE_LOG_LEVEL": "WARNING",
        "COLUMNS": "120",
    }

    def run(*args: str, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        done = subprocess.run(
            args, env=environment, cwd=outside, capture_output=True, text=True, timeout=timeout_s
        )
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    package = run(str(installed / "python"), "-c", "import clearhouse; print(clearhouse.__file__)")
    assert Path(package.strip()).is_relative_to(installed.parent)

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"database at revision {head}" in run(clearhouse, "db", "upgrade")

    port = _free_port()
    log = (outside / "serve.log").open("wb")
    server = subprocess.Popen(
        [clearhouse, "serve", "--port", str(port)],
        env=environment,
        cwd=outside,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (outside / "serve.log").read_text()
            assert time.monotonic() < deadline, (outside / "serve.log").read_text()
            time.sleep(0.2)
        # The docs page loads its viewer from the installed packages, not from a CDN.
        bundle = httpx.get(f"http://127.0.0.1:{port}/schema/swagger-ui/swagger-ui-bundle.js")
        assert bundle.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()

    demo_database = f"clearhouse_wheel_demo_{uuid.uuid4().hex[:12]}"
    try:
        shown = run(
            clearhouse,
            "demo",
            "--database",
            demo_database,
            "--out",
            str(outside / "reports"),
            timeout_s=DEMO_TIMEOUT_S,
        )
    finally:
        asyncio.run(_drop_database(new_database, demo_database))
    assert "audit verify: verifies" in shown
    assert {p.name for p in (outside / "reports").glob("*.json")} >= {
        "statement-2026-11-baeckerei-schmidt.json",
        "statement-2026-11-coalition.json",
    }
