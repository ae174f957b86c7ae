"""``clearhouse settle`` in-process through click, on a database of its own (it moves the
sandbox clock and would seal a month)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from clearhouse.cli import main
from clearhouse.services.clock import set_ledger_time
from tests.conftest import fresh_database
from tests.services.builders import a_member, a_partner
from tests.services.test_clearing import FEB_START, JAN_START, JANUARY
from tests.web.test_settlement_refused import (
    SECOND_REASON,
    members_hold_more_than_the_ledger_says,
    with_a_second_reason,
)


async def test_settling_a_month_that_does_not_add_up_prints_settlement_refused_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        member = await a_member(database, balance=300, partner_id=await a_partner(database))
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        await members_hold_more_than_the_ledger_says(database, member)
        with_a_second_reason(monkeypatch)
        env = {
            "DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
            "CLEARHOUSE_SANDBOX": "1",
            "CLEARHOUSE_DATA_DIR": str(tmp_path),
        }
        # The command runs its own event loop, so it gets a thread of its own.
        result = await asyncio.to_thread(CliRunner().invoke, main, ["settle", JANUARY], env=env)
        assert result.exit_code == 1, result.output
        assert result.output.strip().endswith(
            "Error: settlement_refused: the settlement does not add up: the points roll-forward "
            "closes at 300 but members hold 305 at the cut-off; the lots hold 300 points at the "
            f"cut-off but members hold 305; {SECOND_REASON}"
        )
        async with database.driver_connection() as connection:
            assert await connection.fetchval("SELECT count(*) FROM periods") == 0
