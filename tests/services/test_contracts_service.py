"""Contracts through the services on a real PostgreSQL: loading, versions in force, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clearhouse.domain.contracts import ContractInvalid
from clearhouse.domain.errors import LimitExceeded, PurposeNotPermitted
from clearhouse.services.clock import ledger_time
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger
from tests.services.builders import (
    ZONE,
    a_ledger,
    a_member,
    a_partner,
    contract_toml,
    points_request,
    unique,
)

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_loading_twice_stores_once_and_a_changed_file_is_refused(database: Database) -> None:
    partner_id = unique("p")
    text = contract_toml(partner_id)
    first = await load_contracts(database, [("a.toml", text.encode())])
    again = await load_contracts(database, [("a.toml", text.encode())])
    assert first.stored == [(partner_id, 1)]
    assert first.partners_added == [partner_id]
    assert again.stored == []
    assert again.unchanged == [(partner_id, 1)]
    changed = contract_toml(partner_id, issue_rate="0.0200")
    with pytest.raises(ContractInvalid, match="immutable"):
        await load_contracts(database, [("a.toml", changed.encode())])
    versions = await ContractBook(database).versions(partner_id)
    assert [str(v.issue_rate) for v in versions] == ["0.010000"]


async def test_one_bad_file_stores_nothing_of_the_others(database: Database) -> None:
    good, bad = unique("good"), unique("bad")
    with pytest.raises(ContractInvalid) as refused:
        await load_contracts(
            database,
            [
                ("good.toml", contract_toml(good).encode()),
                ("bad.toml", contract_toml(bad, issue_rate="-1").encode()),
            ],
        )
    assert [p.file for p in refused.value.problems] == ["bad.toml"]
    assert await ContractBook(database).versions(good) == []


async def test_a_version_may_not_reach_back_over_recorded_entries(database: Database) -> None:
    partner_id = await a_partner(database)
    member = await a_member(database)
    await a_ledger(database).issue(partner_id, points_request(member, 5), idempotency_key="k")
    back = contract_toml(partner_id, version=2, effective_from="2001-01-01T00:00:00Z")
    with pytest.raises(ContractInvalid, match="reach back"):
        await load_contracts(database, [("v2.toml", back.encode())])
    out_of_order = contract_toml(partner_id, version=3, effective_from="2099-01-01T00:00:00Z")
    with pytest.raises(ContractInvalid, match="next version"):
        await load_contracts(database, [("v3.toml", out_of_order.encode())])


async def test_a_partner_without_a_version_in_force_cannot_post(database: Database) -> None:
    partner_id = unique("future")
    future = contract_toml(partner_id, effective_from="2099-01-01T00:00:00Z")
    await load_contracts(database, [("f.toml", future.encode())])
    member = await a_member(database)
    with pytest.raises(PurposeNotPermitted, match="no contract version in force"):
        await a_ledger(database).issue(partner_id, points_request(member, 5), idempotency_key="k")


async def test_limits_per_transaction_and_per_member_and_day(database: Database) -> None:
    partner_id = await a_partner(
        database, max_points_per_transaction=100, max_points_per_member_per_day=250
    )
    member = await a_member(database)
    ledger = a_ledger(database)
    with pytest.raises(LimitExceeded, match="per transaction"):
        await ledger.issue(partner_id, points_request(member, 101), idempotency_key="big")
    for n in range(2):
        await ledger.issue(partner_id, points_request(member, 100), idempotency_key=f"ok{n}")
    with pytest.raises(LimitExceeded, match="per member and day"):
        await ledger.issue(partner_id, points_request(member, 51), idempotency_key="over")
    posted = await ledger.issue(partner_id, points_request(member, 50), idempotency_key="last")
    assert posted.entry.member_balance_after == 250
    # Redeeming has its own daily total.
    redeemed = await ledger.redeem(partner_id, points_request(member, 100), idempotency_key="r")
    assert redeemed.entry.member_balance_after == 150


async def test_a_version_loaded_after_the_book_was_filled_is_used_when_it_takes_effect(
    database: Database,
) -> None:
    partner_id = await a_partner(database)
    member = await a_member(database)
    book = ContractBook(database)
    ledger = Ledger(database, book, ZONE)
    first = await ledger.issue(partner_id, points_request(member, 5), idempotency_key="1")
    assert first.entry.contract_version == 1
    # Version 2 takes effect a moment from now; the book in memory has not seen it.
    starts = await ledger_time(database) + timedelta(milliseconds=300)
    v2 = contract_toml(partner_id, version=2, effective_from=rfc3339(starts))
    await load_contracts(database, [("v2.toml", v2.encode())])
    while await ledger_time(database) < starts:
        pass
    second = await ledger.issue(partner_id, points_request(member, 5), idempotency_key="2")
    assert second.entry.contract_version == 2
    reversal = await ledger.reverse(
        partner_id, first.entry.entry_id, points=None, reason="r", idempotency_key="3"
    )
    assert reversal.entry.contract_version == 1


async def test_the_shipped_example_contracts_load(database: Database) -> None:
    files = [(p.name, p.read_bytes()) for p in sorted(CONTRACTS.glob("*.toml"))]
    report = await load_contracts(database, files)
    assert sorted(report.stored + report.unchanged) == [
        ("baeckerei-schmidt", 1),
        ("baeckerei-schmidt", 2),
        ("shopwelt", 1),
        ("tankstelle-nord", 1),
    ]
