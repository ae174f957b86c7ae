"""The partner client installs alone: its wheel, built from this tree, goes into a fresh venv
outside the checkout with its dependencies and nothing else, brings none of the server's
packages, and runs the partner quickstart against a real ``clearhouse serve``.

Offline by design (it passes inside ``unshare -n``): the wheel is built with uv from the local
tree only. Its dependencies are the distributions of this run's own venv that the wheel's
``Requires-Dist`` reaches (markers and extras followed), each packed back into a wheel from the
files its ``RECORD`` lists; uv then installs the client wheel from those wheels alone
(``--no-index --find-links``, no cache), resolving its requirements as it would from an index.
A requirement the client forgot leaves the fresh venv without it (importing the client, or the
quickstart, fails), and one it should not have brings a server package in (the absence check
fails).
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import importlib.metadata
import io
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Final

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.e2e.test_partner_quickstart import follow_the_quickstart
from tests.e2e.test_wheel import BUILD_TIMEOUT_S, _uv

REPO: Final = Path(__file__).resolve().parents[2]
CLIENT: Final = "clearhouse-client"
SERVER_PACKAGES: Final = (
    "clearhouse",
    "litestar",
    "sqlalchemy",
    "asyncpg",
    "pgserver",
    "pandas",
    "openpyxl",
)
"""Importable names that must not be there; the distributions carry the same names."""
LEFT_OUT_OF_WHEELS: Final = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
"""What an installer wrote into a ``.dist-info``, and a wheel does not carry (its ``RECORD`` is
written anew)."""

LOOK_AROUND: Final = """
import importlib.metadata, importlib.util, json, sys
import clearhouse_client
print(json.dumps({
    "client": clearhouse_client.__file__,
    "version": importlib.metadata.version("clearhouse-client"),
    "importable": [name for name in sys.argv[1:] if importlib.util.find_spec(name) is not None],
    "installed": [d.metadata["Name"] for d in importlib.metadata.distributions()],
}))
"""


def _requires_dist(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's own metadata."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    return email.parser.Parser().parsestr(text).get_all("Requires-Dist") or []


def _needed(requirements: list[str], extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """The requirements that apply on this interpreter with ``extras`` asked for."""
    needed = []
    for line in requirements:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
            needed.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


def dependency_closure(requirements: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """The distributions of this venv that ``requirements`` reach, by canonical name."""
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    to_visit = _needed(requirements, frozenset())
    while to_visit:
        name, extras = to_visit.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found[name] = importlib.metadata.distribution(name)
        to_visit += _needed(found[name].requires or [], extras)
    return found


def _wheel_tag(distribution: importlib.metadata.Distribution) -> str:
    """The compressed tag set (``py2.py3-none-any``) of the wheel it was installed from."""
    wheel = email.parser.Parser().parsestr(distribution.read_text("WHEEL") or "")
    tags = [tag.split("-") for tag in wheel.get_all("Tag") or []]
    assert tags, f"{distribution.metadata['Name']} was not installed from a wheel"
    return "-".join(".".join(sorted({tag[i] for tag in tags})) for i in range(3))


def pack_wheel(distribution: importlib.metadata.Distribution, folder: Path) -> Path:
    """The installed distribution as a wheel again: the files its ``RECORD`` lists inside
    site-packages (no scripts, no bytecode), with a ``RECORD`` of their own."""
    files = [
        file
        for file in distribution.files or []
        if file.parts[0] != ".." and "__pycache__" not in file.parts and file.suffix != ".pyc"
    ]
    (dist_info,) = {
        f.parent for f in files if f.name == "METADATA" and f.parent.suffix == ".dist-info"
    }
    name = canonicalize_name(distribution.metadata["Name"]).replace("-", "_")
    wheel = folder / f"{name}-{distribution.version}-{_wheel_tag(distribution)}.whl"
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for file in files:
            if file.parent == dist_info and file.name in LEFT_OUT_OF_WHEELS:
                continue
            content = Path(str(distribution.locate_file(file))).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
            rows.writerow([file.as_posix(), f"sha256={digest.decode()}", len(content)])
            archive.writestr(file.as_posix(), content)
        rows.writerow([f"{dist_info.as_posix()}/RECORD", "", ""])
        archive.writestr(f"{dist_info.as_posix()}/RECORD", record.getvalue())
    return wheel


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


@pytest.fixture(scope="module")
def partner_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv outside the checkout holding the client wheel and only what
    its requirements reach."""
    root = tmp_path_factory.mktemp("client-alone")
    assert REPO not in root.parents
    uv, dist, wheels, venv = _uv(), root / "dist", root / "wheels", root / "partner-venv"
    build = ["build", "--package", CLIENT, "--wheel", "--offline", "--no-build-logs"]
    _run(uv, *build, "--out-dir", dist, REPO)
    (client_wheel,) = dist.glob("clearhouse_client-*.whl")
    wheels.mkdir()
    for distribution in dependency_closure(_requires_dist(client_wheel)).values():
        pack_wheel(distribution, wheels)
    _run(uv, "venv", "--offline", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    local_only = ["--offline", "--no-index", "--no-cache", "--find-links", wheels]
    _run(uv, "pip", "install", *local_only, "--python", python, client_wheel)
    return python


def test_the_client_wheel_installs_alone_with_nothing_of_the_server(
    partner_python: Path, tmp_path: Path
) -> None:
    found = json.loads(
        _run(partner_python, "-I", "-c", LOOK_AROUND, *SERVER_PACKAGES, cwd=tmp_path)
    )
    assert Path(found["client"]).is_relative_to(partner_python.parent.parent)
    assert found["importable"] == []
    installed = {canonicalize_name(name) for name in found["installed"]}
    assert installed.isdisjoint(SERVER_PACKAGES)
    main_project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert found["version"] == main_project["version"]


def test_the_partner_quickstart_runs_on_the_client_alone(
    partner_python: Path,
    sandbox_environment: dict[str, str],
    sandbox_server: str,
    tmp_path: Path,
) -> None:
    partner = tmp_path / "partner"
    partner.mkdir()
    follow_the_quickstart(partner_python, sandbox_environment, sandbox_server, partner)
