"""What the ``clearhouse`` command does before any work: its version, a quick ``--help`` that
loads nothing heavy, one line for a bad setting, and logs kept off standard output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import clearhouse
from clearhouse.cli import main
from clearhouse.services.access import Role

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"litestar", "sqlalchemy", "asyncpg", "pandas", "openpyxl", "uvicorn", "rich", "pgserver"}


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=120,
    )


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"clearhouse, version {clearhouse.__version__}\n"


@pytest.mark.parametrize("args", [["--help"], ["entry", "list", "--help"], ["settle", "--help"]])
def test_help_loads_no_database_web_or_report_library(args: list[str]) -> None:
    code = (
        "import sys, clearhouse.cli\n"
        f"clearhouse.cli.main({args!r}, standalone_mode=False)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_roles_offered_are_the_services_roles() -> None:
    from clearhouse.cli.tokens import ROLES  # the CLI's own list, kept off the services

    assert tuple(r.value for r in Role) == ROLES


def test_a_bad_log_level_is_one_line_naming_the_variable_and_what_it_accepts() -> None:
    result = CliRunner().invoke(main, ["clock", "show"], env={"CLEARHOUSE_LOG_LEVEL": "LOUD"})
    assert result.exit_code == 1
    assert result.output == (
        "Error: CLEARHOUSE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "not 'LOUD'\n"
    )


def test_serve_with_a_bad_log_level_ends_in_one_line_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clearhouse.cli", "serve"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "CLEARHOUSE_LOG_LEVEL": "LOUD", "CLEARHOUSE_SANDBOX": "1"},
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: CLEARHOUSE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "not 'LOUD'"
    ]


def test_log_lines_go_to_standard_error() -> None:
    result = _python(
        "import structlog\n"
        "from clearhouse.web.app import configure_logging\n"
        "configure_logging('INFO')\n"
        "structlog.get_logger('clearhouse.web').info('hello')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert '"event": "hello"' in result.stderr


@pytest.mark.parametrize(("level", "chatter"), [("INFO", False), ("DEBUG", True)])
def test_the_embedded_server_says_what_it_runs_only_at_debug(level: str, chatter: bool) -> None:
    result = _python(
        "import logging\n"
        "from clearhouse.config import Settings\n"
        "from clearhouse.storage.engine import resolve_database_url\n"
        f"logging.basicConfig(level={level!r})\n"
        f"resolve_database_url(Settings.from_env({{'CLEARHOUSE_LOG_LEVEL': {level!r}}}))\n",
    )
    assert result.returncode == 0, result.stderr
    assert ("pgserver" in result.stderr) is chatter, result.stderr


def test_what_the_documented_commands_write_into_the_checkout_is_ignored_by_git() -> None:
    written = ["keys/baeckerei-schmidt.pem", "reports/2026-11/coalition.json", "reports/demo/x"]
    result = subprocess.run(
        ["git", "check-ignore", *written], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.stdout.split() == written
