"""``clearhouse demo``: the whole month as a newcomer runs it, in a database of its own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import openpyxl
from sqlalchemy.engine import make_url

from tests.services.builders import unique

CLEARHOUSE = str(Path(sys.executable).parent / "clearhouse")


async def _drop(database_url: str, name: str) -> None:
    dsn = make_url(database_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _entries_outside_the_month(database_url: str, name: str) -> int:
    """Partner entries whose occurred_at is after their recording, or in another month (in
    Berlin) than the one they were recorded in: October's prelude or November."""
    dsn = make_url(database_url).set(drivername="postgresql", database=name)
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        count = await connection.fetchval(
            """
            SELECT count(*) FROM entries
             WHERE kind IN ('issue', 'redeem', 'reversal') AND occurred_at IS NOT NULL
               AND (date_trunc('month', occurred_at AT TIME ZONE 'Europe/Berlin')
                        <> date_trunc('month', recorded_at AT TIME ZONE 'Europe/Berlin')
                    OR recorded_at < '2026-10-01T00:00:00+02:00'
                    OR recorded_at >= '2026-12-01T00:00:00+01:00'
                    OR occurred_at > recorded_at)
            """
        )
    finally:
        await connection.close()
    return int(count)


async def _hold_outcomes(database_url: str, name: str) -> dict[str, int]:
    """How the demo's holds ended (open ones past their time count as expired), and how many
    captures took less than their hold reserved."""
    dsn = make_url(database_url).set(drivername="postgresql", database=name)
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        rows = await connection.fetch(
            """
            SELECT CASE WHEN status = 'open' AND expires_at <= ledger_now() THEN 'expired'
                        ELSE status END AS outcome, count(*) AS holds
              FROM holds GROUP BY 1
            UNION ALL
            SELECT 'captured for less', count(*) FROM holds WHERE captured_points < points
            """
        )
    finally:
        await connection.close()
    return {row["outcome"]: int(row["holds"]) for row in rows}


def test_the_demo_runs_a_month_and_writes_verified_statements(
    database_url: str, tmp_path: Path
) -> None:
    name = unique("demo").replace("-", "_")
    out = tmp_path / "reports"
    try:
        done = subprocess.run(
            [CLEARHOUSE, "demo", "--database", name, "--out", str(out)],
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "CLEARHOUSE_SANDBOX": "1",
                "CLEARHOUSE_DATA_DIR": str(tmp_path / "data"),
                "COLUMNS": "120",
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        # Its last line verifies what it made, as it stands, in a shell of its own.
        last_line = done.stdout.strip().splitlines()[-1]
        assert " audit verify --database " in last_line
        again = subprocess.run(
            ["bash", "-c", last_line],
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outside_the_month = asyncio.run(_entries_outside_the_month(database_url, name))
        holds = asyncio.run(_hold_outcomes(database_url, name))
    finally:
        asyncio.run(_drop(database_url, name))
    assert again.returncode == 0, again.stderr + again.stdout
    assert again.stdout.startswith("verifies: 2 period(s), ")
    assert outside_the_month == 0
    for outcome in ("captured for less", "voided", "expired", "open"):
        assert holds.get(outcome, 0) > 0, holds
    assert "holds: " in done.stdout
    hooks = re.search(
        r"webhooks: (\d+) events delivered to the partners' loopback receivers, (\d+) of them "
        r"v1a-verified, 0 undelivered",
        " ".join(done.stdout.split()),
    )
    assert hooks is not None, done.stdout
    assert int(hooks[1]) > 300
    assert hooks[1] == hooks[2]
    assert "look at it: " in done.stdout
    expiry = re.search(
        r"expiry: ([\d,]+) welcome points issued on 2 October, (\d+) points.expiring reminders "
        r"to partners that may see balances, ([\d,]+) points expired on 2 November",
        " ".join(done.stdout.split()),
    )
    assert expiry is not None, done.stdout
    welcome, reminders, expired = (int(group.replace(",", "")) for group in expiry.groups())
    assert 0 < expired <= welcome
    assert reminders > 0
    assert "audit verify: verifies" in done.stdout
    assert "= 0.00" in done.stdout
    for code in (
        "insufficient_points",
        "limit_exceeded",
        "purpose_not_permitted",
        "consent_required",
        "unknown_member",
        "member_erased",
        "idempotency_key_reused",
    ):
        assert code in done.stdout
    statements = sorted(out.glob("*.json"))
    parties = {json.loads(p.read_text())["statement_id"].split("/")[1] for p in statements}
    assert parties == {"baeckerei-schmidt", "shopwelt", "tankstelle-nord", "coalition"}
    coalition = json.loads((out / "statement-2026-11-coalition.json").read_text())
    assert coalition["open_holds_at_cut_off"]["holds"] == holds["open"]
    bakery = json.loads((out / "statement-2026-11-baeckerei-schmidt.json").read_text())
    assert {line["contract_version"] for line in bakery["lines"]} == {1, 2}
    for workbook in out.glob("*.xlsx"):
        sheets = openpyxl.load_workbook(workbook, read_only=True).sheetnames
        assert sheets[0] == "Summary"
        assert sheets[-1] == "Integrity"
    # October's welcome points and November's issues are the two cohorts; what October issued
    # and did not redeem first expired in November, and the outstanding points are the balances.
    cohorts = {c["month"]: c for c in coalition["breakage_cohorts"]}
    assert sorted(cohorts) == ["2026-10", "2026-11"]
    assert cohorts["2026-10"]["issued"] == welcome
    assert cohorts["2026-10"]["expired"] == expired == coalition["points_roll_forward"]["expired"]
    outstanding = sum(c["outstanding"] for c in cohorts.values())
    assert outstanding == coalition["points_roll_forward"]["member_balances_at_cut_off"]
    book = openpyxl.load_workbook(out / "statement-2026-11-coalition.xlsx", read_only=True)
    months = [row[0] for row in book["Breakage"].iter_rows(values_only=True) if row]
    assert {"2026-10", "2026-11"} <= set(months)
