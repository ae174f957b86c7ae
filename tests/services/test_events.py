"""The outbox: events are written in the transaction of the write they tell of, carry no
personal data, reach only their partner, and page by a cursor that never skips a row
committed out of order."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest

from clearhouse.domain.errors import InsufficientPoints
from clearhouse.domain.events import START, Event, EventPosition
from clearhouse.services import access
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.events import announce_contract_versions, events_page
from clearhouse.services.holds import HoldRequest, Holds
from tests.conftest import fresh_database
from tests.services.builders import (
    OCCURRED_AT,
    a_ledger,
    a_member,
    a_partner,
    contract_toml,
    points_request,
    unique,
)
from tests.services.test_clearing import FEB_START, JAN_START, JANUARY, clearing_of


async def _all(database: Database, partner_id: str) -> list[Event]:
    return await events_page(database, partner_id, START, 1000)


async def _revocations(
    database: Database, partner_id: str, after: EventPosition = START, limit: int = 1000
) -> list[Event]:
    return [
        e for e in await events_page(database, partner_id, after, limit) if e.type == "key.revoked"
    ]


async def test_an_entry_writes_its_event_in_its_own_transaction_with_thin_data(
    database: Database,
) -> None:
    partner = await a_partner(database)
    member = await a_member(database)
    posted = await a_ledger(database).issue(
        partner, points_request(member, 70), idempotency_key="e1"
    )
    (event,) = [e for e in await _all(database, partner) if e.type == "entry.recorded"]
    assert event.event_id.startswith("evt_")
    body = json.loads(event.body)
    assert body["type"] == "entry.recorded"
    assert body["data"] == event.data
    assert event.data["entry_id"] == str(posted.entry.entry_id)
    assert (event.data["kind"], event.data["member_id"], event.data["points"]) == (
        "issue",
        member,
        70,
    )
    # Thin: ids, points, kinds and times; the reference and metadata stay behind the GETs.
    assert set(event.data) <= {
        "entry_id",
        "kind",
        "member_id",
        "points",
        "contract_version",
        "recorded_at",
        "reversal_of",
        "hold_id",
    }


async def test_a_refused_write_leaves_no_event_and_a_rolled_back_one_neither(
    database: Database, dsn: str
) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=5, partner_id=partner)
    before = len(await _all(database, partner))
    with pytest.raises(InsufficientPoints):
        await a_ledger(database).redeem(partner, points_request(member, 6), idempotency_key="r")
    connection = await asyncpg.connect(dsn)
    try:
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute(
            "SELECT outbox_record('key.revoked', $1, now(), '{}'::jsonb)", partner
        )
        await transaction.rollback()
    finally:
        await connection.close()
    assert len(await _all(database, partner)) == before


async def test_a_partner_sees_only_its_own_events(database: Database) -> None:
    first, second = await a_partner(database), await a_partner(database)
    member = await a_member(database)
    await a_ledger(database).issue(first, points_request(member, 1), idempotency_key="a")
    assert [e.type for e in await _all(database, second)] == ["contract.version_effective"]
    assert [e.type for e in await _all(database, first)] == [
        "contract.version_effective",
        "entry.recorded",
    ]


async def test_the_cursor_never_skips_an_event_committed_out_of_order(
    database: Database, dsn: str
) -> None:
    partner = await a_partner(database)
    early, late = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        slow = early.transaction()
        await slow.start()
        # The slow transaction writes first (the older transaction id) and commits last.
        await early.execute(
            "SELECT outbox_record('key.revoked', $1, now(), '{\"n\": 1}'::jsonb)", partner
        )
        await late.execute(
            "SELECT outbox_record('key.revoked', $1, now(), '{\"n\": 2}'::jsonb)", partner
        )
        seen = await _revocations(database, partner)
        # The committed one waits behind the running one: served now, the slow one, once it
        # commits, would land before the cursor and be skipped.
        assert [e.data for e in seen] == []
        await slow.commit()
        (first,) = [e for e in await _revocations(database, partner) if e.data == {"n": 1}]
        rest = await _revocations(database, partner, first.position)
        assert [e.data for e in rest] == [{"n": 2}]
    finally:
        await early.close()
        await late.close()


async def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    position = EventPosition(123_456, 789)
    assert EventPosition.of_cursor(position.cursor()) == position
    from clearhouse.domain.errors import InvalidRequest

    for forged in ("not-base64!", "MTIz", "LTEuMg"):  # "123", "-1.2"
        with pytest.raises(InvalidRequest):
            EventPosition.of_cursor(forged)


async def test_holds_keys_and_contract_versions_tell_their_partner(database: Database) -> None:
    partner = await a_partner(database)
    member = await a_member(database, balance=100, partner_id=partner)
    ledger = a_ledger(database)
    holds = Holds(database, ContractBook(database), ledger)
    hold = await holds.authorize(
        partner, HoldRequest(member, 40, OCCURRED_AT, "pump"), idempotency_key="h"
    )
    await holds.capture(partner, hold.hold.hold_id, 25, idempotency_key="c")
    key_id = await access.add_key(database, partner, "A" * 43 + "=")
    await access.revoke_key(database, key_id)
    types = [e.type for e in await _all(database, partner)]
    assert types == [
        "contract.version_effective",
        "entry.recorded",
        "hold.authorized",
        "hold.captured",
        "entry.recorded",
        "key.revoked",
    ] or types == [
        "contract.version_effective",
        "entry.recorded",
        "hold.authorized",
        "entry.recorded",
        "hold.captured",
        "key.revoked",
    ]
    captured = next(e for e in await _all(database, partner) if e.type == "hold.captured")
    assert (captured.data["points"], captured.data["released_points"]) == (25, 15)
    # Announcing again announces nothing twice.
    assert await announce_contract_versions(database) == 0


async def test_a_version_taking_effect_later_is_announced_once_when_it_does() -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START)
        partner = unique("p")
        await load_contracts(database, [(f"{partner}.v1.toml", contract_toml(partner).encode())])
        later = contract_toml(partner, version=2, effective_from="2030-01-20T00:00:00Z")
        await load_contracts(database, [(f"{partner}.v2.toml", later.encode())])
        versions = [
            e.data["version"]
            for e in await _all(database, partner)
            if e.type == "contract.version_effective"
        ]
        assert versions == [1]
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(days=20))
        assert await announce_contract_versions(database) == 1
        assert await announce_contract_versions(database) == 0
        versions = [
            e.data["version"]
            for e in await _all(database, partner)
            if e.type == "contract.version_effective"
        ]
        assert versions == [1, 2]


async def test_closing_and_settling_tell_every_partner() -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        partner = await a_partner(database)
        member = await a_member(database)
        await a_ledger(database).issue(partner, points_request(member, 10), idempotency_key="i")
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        await clearing_of(database).settle(JANUARY)
        events = await _all(database, partner)
        closed = [e.data for e in events if e.type == "period.closed"]
        available = [e.data for e in events if e.type == "statement.available"]
        assert [c["period"] for c in closed] == [JANUARY]
        assert [(a["period"], a["party"]) for a in available] == [(JANUARY, partner)]


async def test_a_coalition_keys_purpose_never_changes(database: Database, dsn: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from clearhouse.crypto.ed25519 import CoalitionKey
    from clearhouse.services import coalition_keys

    key = CoalitionKey.of(Ed25519PrivateKey.generate())
    await coalition_keys.register(database, key, "webhooks")
    connection = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.RaiseError, match="change only by retiring"):
            await connection.execute(
                "UPDATE coalition_keys SET purpose = 'statements' WHERE key_id = $1", key.key_id
            )
        with pytest.raises(asyncpg.RaiseError, match="change only by retiring"):
            await connection.execute(
                "UPDATE coalition_keys SET purpose = 'statements', retired_at = clock_timestamp()"
                " WHERE key_id = $1",
                key.key_id,
            )
    finally:
        await connection.close()
