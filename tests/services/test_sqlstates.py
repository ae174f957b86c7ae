"""The database's refusals (SQLSTATEs of class ``CH``) are domain errors, mapped in one place
(``clearhouse.storage.sqlstates``) for every service that meets them: posting, and settling,
whose money entries go through the same ``ledger_post``. The codes are read from the live
functions, whose source is ``clearhouse/migrations/functions/``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final

import pytest

from clearhouse.domain.errors import PeriodClosed
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import load_contracts
from clearhouse.services.database import Database
from clearhouse.storage.sqlstates import SQLSTATE_ERRORS
from tests.conftest import fresh_database
from tests.services.builders import a_ledger, contract_toml, points_request, unique
from tests.services.test_clearing import BERLIN, FEB_START, JAN_START, JANUARY, clearing_of

RAISED_CODE: Final = re.compile(r"(?:ERRCODE\s*=\s*|SQLSTATE\s+)'(CH[0-9A-Z]{3})'", re.IGNORECASE)
MARCH_START: Final = datetime(2030, 3, 1, tzinfo=BERLIN)


async def test_every_ch_sqlstate_of_the_database_functions_has_its_domain_error(
    database: Database,
) -> None:
    async with database.driver_connection() as connection:
        definitions = await connection.fetch(
            """
            SELECT p.proname, pg_get_functiondef(p.oid) AS definition
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
            """
        )
    raised: dict[str, set[str]] = {}
    for row in definitions:
        for code in RAISED_CODE.findall(row["definition"]):
            raised.setdefault(code.upper(), set()).add(row["proname"])
    raising = set().union(*raised.values())
    assert {"ledger_post", "refuse_change", "check_entry_balanced", "hold_take"} <= raising
    unmapped = {code: names for code, names in raised.items() if code not in SQLSTATE_ERRORS}
    assert unmapped == {}, "CH codes that clearhouse.storage.sqlstates does not map"
    assert sorted(SQLSTATE_ERRORS.keys() - raised.keys()) == [], "mapped codes nothing raises"


async def test_a_settlement_entry_the_database_refuses_is_its_domain_error_and_writes_nothing() -> (
    None
):
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        bakery, shop = unique("bakery"), unique("shop")
        await load_contracts(
            database, [(p, contract_toml(p, issue_rate="0.0125").encode()) for p in (bakery, shop)]
        )
        member = unique("m")
        await enrol_members(database, [member])
        ledger = a_ledger(database)
        await ledger.issue(bakery, points_request(member, 1000), idempotency_key="a")
        await ledger.redeem(shop, points_request(member, 400), idempotency_key="b")
        clearing = clearing_of(database)
        await set_ledger_time(database, sandbox=True, at=MARCH_START + timedelta(seconds=1))
        await clearing.close(JANUARY)
        await clearing.close("2030-02")
        # Back in (closed) February on the sandbox clock: the money entries of January's
        # settlement would be recorded now, in a sealed month, and ledger_post refuses them.
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(days=1))
        with pytest.raises(PeriodClosed, match="period 2030-02 is closed"):
            await clearing.settle(JANUARY)
        async with database.driver_connection() as connection:
            statements = await connection.fetchval("SELECT count(*) FROM statements")
            settlements = await connection.fetchval(
                "SELECT count(*) FROM entries WHERE kind = 'settlement'"
            )
        assert (statements, settlements) == (0, 0)
        assert (await clearing.closed_period(JANUARY)).status == "closed"
