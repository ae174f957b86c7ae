"""Operator commands in-process through click, on the run's database."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from clearhouse.cli import main
from tests.services.builders import unique


def test_an_operator_adjusts_and_expires_points_and_is_told_when_short(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    member = unique("m")
    assert runner.invoke(main, ["member", "enrol", member], env=env).exit_code == 0
    goodwill = runner.invoke(
        main, ["member", "adjust", member, "--points", "300", "--reason", "goodwill"], env=env
    )
    assert goodwill.exit_code == 0, goodwill.output
    assert "balance 300" in goodwill.output
    expired = runner.invoke(main, ["member", "expire", member, "120"], env=env)
    assert "balance 180" in expired.output
    correction = runner.invoke(
        main, ["member", "adjust", member, "--points=-180", "--reason", "correction"], env=env
    )
    assert "balance 0" in correction.output
    short = runner.invoke(main, ["member", "expire", member, "1"], env=env)
    assert short.exit_code == 1
    assert short.output.strip() == (
        "Error: insufficient_points: the member does not have enough points available"
    )
