"""The partner quickstart, as documented: a real server process, the CLI, the example script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.services.builders import contract_toml, unique

REPO = Path(__file__).resolve().parents[2]
CLEARHOUSE = str(Path(sys.executable).parent / "clearhouse")
QUICKSTART = REPO / "docs/examples/partner_quickstart.py"


def _cli(environment: dict[str, str], *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [CLEARHOUSE, *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def follow_the_quickstart(
    python: Path | str, environment: dict[str, str], server: str, folder: Path
) -> None:
    """The operator's steps of the quickstart with the CLI in ``folder``, then the partner's
    script run by ``python`` in an environment holding only what the quickstart sets (and
    ``PATH``), isolated from the caller's Python settings; it must print what the page shows."""
    partner_id, member_id = unique("baeckerei"), unique("m")
    (folder / "contracts").mkdir()
    (folder / "contracts" / f"{partner_id}.v1.toml").write_text(contract_toml(partner_id))
    _cli(environment, "contracts", "load", "contracts", cwd=folder)
    _cli(environment, "key", "generate", "keys/baeckerei", cwd=folder)
    added = _cli(environment, "key", "add", partner_id, "keys/baeckerei.pub.pem", cwd=folder)
    key_id = re.search(r"key (\S+) added", added)
    assert key_id is not None
    _cli(environment, "member", "enrol", member_id, cwd=folder)

    done = subprocess.run(
        [str(python), "-I", str(QUICKSTART)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(folder),
            "CLEARHOUSE_URL": server,
            "KEY_ID": key_id[1],
            "KEY_FILE": str(folder / "keys/baeckerei.pem"),
            "MEMBER_ID": member_id,
        },
        cwd=folder,
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


def test_a_partner_follows_the_quickstart_against_a_real_server(
    sandbox_environment: dict[str, str], sandbox_server: str, tmp_path: Path
) -> None:
    follow_the_quickstart(sys.executable, sandbox_environment, sandbox_server, tmp_path)
