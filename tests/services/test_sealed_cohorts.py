"""A period's breakage cohorts are sealed with it: closing computes them as of the cut-off and
keeps them; netting and settling read them, and later redeems of the month's lots leave them as
they were. A period closed before cohorts were sealed with periods is netted from the lots.

One month is played by hand in a database of its own (it moves the sandbox clock); the expected
cohort is worked out from the entries in the comments, not read from a run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.netting import Cohort
from clearhouse.domain.periods import period_bounds
from clearhouse.domain.records import SealedPeriod
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger
from clearhouse.storage import clearing as store
from tests.conftest import fresh_database
from tests.services.builders import ZONE, contract_toml, points_request, unique

ISSUED = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
REDEEMED = datetime(2026, 10, 20, 10, 0, tzinfo=UTC)
AFTER_OCTOBER = datetime(2026, 10, 31, 23, 0, 1, tzinfo=UTC)  # 1 November 00:00:01 in Berlin
IN_NOVEMBER = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)

# 100 and 40 issued to Anna in October, 30 of them redeemed in October (age 0): 110 remain.
OCTOBER = Cohort(
    month="2026-10",
    issued=140,
    adjusted=0,
    redeemed=30,
    expired=0,
    outstanding=110,
    redeemed_by_age=(30,),
)


async def _october(database: Database) -> tuple[Ledger, Clearing, str, str]:
    """Anna's October, the clock just past its end; the ledger, clearing, shop and Anna."""
    await set_ledger_time(database, sandbox=True, at=ISSUED)
    ledger = Ledger(database, ContractBook(database), ZONE)
    clearing = Clearing(
        database, zone=ZoneInfo(ZONE), key=CoalitionKey.of(Ed25519PrivateKey.generate())
    )
    bakery, shop, anna = unique("bakery"), unique("shop"), unique("m")
    await load_contracts(
        database, [(f"{p}.v1.toml", contract_toml(p).encode()) for p in (bakery, shop)]
    )
    await enrol_members(database, [anna])
    for points in (100, 40):
        await ledger.issue(bakery, points_request(anna, points), idempotency_key=unique("i"))
    await set_ledger_time(database, sandbox=True, at=REDEEMED)
    await ledger.redeem(shop, points_request(anna, 30), idempotency_key=unique("r"))
    await set_ledger_time(database, sandbox=True, at=AFTER_OCTOBER)
    return ledger, clearing, shop, anna


async def test_closing_seals_the_cohorts_as_of_the_cut_off_and_later_redeems_leave_them() -> None:
    async with fresh_database() as database:
        ledger, clearing, shop, anna = await _october(database)
        closed = await clearing.close("2026-10")
        async with database.driver_connection() as connection:
            assert await store.sealed_cohorts(connection, "2026-10") == [OCTOBER]

        # November takes 50 more of October's lots; October's cohort as of its cut-off stays.
        await set_ledger_time(database, sandbox=True, at=IN_NOVEMBER)
        await ledger.redeem(shop, points_request(anna, 50), idempotency_key=unique("r"))
        async with database.driver_connection() as connection:
            assert await store.sealed_cohorts(connection, "2026-10") == [OCTOBER]
            # The lots read afresh say the same: the seal changed no figure.
            live = await store.breakage_cohorts(connection, closed.ends_at, ZONE, "2026-10")
            assert live == [OCTOBER]
        netting = await clearing.net("2026-10")
        assert (netting.cohorts, netting.problems) == ([OCTOBER], [])


async def test_the_sealed_cohorts_are_never_changed() -> None:
    async with fresh_database() as database:
        _, clearing, _, _ = await _october(database)
        await clearing.close("2026-10")
        async with database.driver_connection() as connection:
            for statement in (
                "UPDATE period_cohorts SET outstanding = outstanding + 1 WHERE period = $1",
                "DELETE FROM period_cohorts WHERE period = $1",
            ):
                with pytest.raises(asyncpg.PostgresError, match="append-only"):
                    await connection.execute(statement, "2026-10")
            assert await store.sealed_cohorts(connection, "2026-10") == [OCTOBER]


async def test_netting_reads_the_sealed_cohorts_and_the_lots_only_for_a_period_sealed_without() -> (
    None
):
    async with fresh_database() as database:
        _, clearing, _, _ = await _october(database)
        starts_at, ends_at = period_bounds("2026-10", ZoneInfo(ZONE))
        # As closing writes it, but with no cohort while the lots hold 110 points (the
        # roots do not matter to netting).
        period = SealedPeriod(
            period="2026-10",
            status="closed",
            starts_at=starts_at,
            ends_at=ends_at,
            closed_at=AFTER_OCTOBER,
            entry_count=3,
            tree_head=bytes(32),
            previous_root=bytes(32),
            root=bytes(32),
            settled_at=None,
        )
        async with database.transaction() as connection:
            await store.insert_period(connection, period, [])
        netting = await clearing.net("2026-10")
        # Netting believes the seal, and its checks say that the seal does not hold what
        # members hold.
        assert netting.cohorts == []
        assert netting.problems == ["the lots hold 0 points at the cut-off but members hold 110"]

        async with database.transaction() as connection:
            # As a period closed before cohorts were sealed with periods: read from the lots.
            await connection.execute("DELETE FROM periods WHERE period = '2026-10'")
            await store.insert_period(connection, period, None)
            assert await store.sealed_cohorts(connection, "2026-10") is None
        netting = await clearing.net("2026-10")
        assert (netting.cohorts, netting.problems) == ([OCTOBER], [])
