"""Reminders before expiry: one ``points.expiring`` event per member, expiry and offset, to the
partners that may see the member's balance for customer service, each one a disclosure.

Each test has a database of its own: it moves the sandbox clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from clearhouse.domain.expiry import (
    DueReminder,
    ExpiringPoints,
    ExpiryMode,
    ExpiryPolicy,
    reminder_due,
    reminders_due,
)
from clearhouse.domain.purposes import Purpose
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry, Reminders
from clearhouse.services.holds import HoldRequest, Holds
from clearhouse.services.members import Members
from clearhouse.services.posting import Ledger
from tests.conftest import fresh_database
from tests.services.builders import (
    OCCURRED_AT,
    ZONE,
    a_partner,
    contract_toml,
    points_request,
    unique,
)

START = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
ONE_MONTH = ExpiryPolicy(mode=ExpiryMode.FIXED, months=1, align="exact")
# Issued on 5 October 12:00 in Berlin: expires on 5 November 12:00 in Berlin, 11:00 UTC (the
# clocks went back on 25 October), a few seconds later as the sandbox clock ticks on.
EXPIRES = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CUSTOMER_SERVICE = (
    '[purposes.customer_service]\nlegal_basis = "legitimate_interest"\n'
    'fields = ["member.given_name", "member.family_name", "member.balance", "transactions.own"]\n'
)


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=START)
        yield database


async def _partner_with(database: Database, customer_service: str) -> str:
    """A partner whose contract says ``customer_service`` (the section, or nothing) so."""
    partner_id = unique("p")
    text = contract_toml(partner_id).replace(CUSTOMER_SERVICE, customer_service)
    assert customer_service == CUSTOMER_SERVICE or text != contract_toml(partner_id)
    await load_contracts(database, [(f"{partner_id}.v1.toml", text.encode())])
    return partner_id


def _ledger(database: Database) -> Ledger:
    return Ledger(database, ContractBook(database), ZONE, ONE_MONTH)


def _expiry(database: Database) -> Expiry:
    contracts = ContractBook(database)
    holds = Holds(database, contracts, _ledger(database))
    return Expiry(database, holds, ZONE, Reminders(database, contracts, ZONE, (30, 7)))


async def _member(database: Database) -> str:
    from clearhouse.services.coalition import enrol_members

    member_id = unique("m")
    await enrol_members(database, [member_id])
    return member_id


async def _issue(database: Database, partner: str, member: str, points: int) -> None:
    await _ledger(database).issue(
        partner, points_request(member, points), idempotency_key=unique("issue")
    )


async def _at(database: Database, moment: datetime) -> None:
    await set_ledger_time(database, sandbox=True, at=moment)


async def _events(database: Database) -> list[dict[str, Any]]:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT event_id, partner_id, data, body, dedupe_key FROM events"
            " WHERE type = 'points.expiring' ORDER BY seq"
        )
    return [
        {
            "event_id": r["event_id"],
            "partner_id": r["partner_id"],
            "data": json.loads(r["data"]),
            "body": json.loads(bytes(r["body"])),
        }
        for r in rows
    ]


async def _disclosures(database: Database) -> list[dict[str, Any]]:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT partner_id, member_id, purpose, fields, contract_version, legal_basis,"
            " request_id FROM disclosures ORDER BY disclosure_id"
        )
    return [dict(r) for r in rows]


async def test_one_reminder_per_offset_with_thin_data_each_a_disclosure_and_a_rerun_adds_none(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member = await _member(db)
    await _issue(db, partner, member, 100)
    await _issue(db, partner, member, 20)

    await _at(db, EXPIRES - 31 * DAY)
    assert (await _expiry(db).run()).reminders == 0
    await _at(db, EXPIRES - 30 * DAY + timedelta(minutes=1))
    assert (await _expiry(db).run()).reminders == 1
    assert (await _expiry(db).run()).reminders == 0
    await _at(db, EXPIRES - 8 * DAY)
    assert (await _expiry(db).run()).reminders == 0
    await _at(db, EXPIRES - 7 * DAY + timedelta(minutes=1))
    assert (await _expiry(db).run()).reminders == 1
    assert (await _expiry(db).run()).reminders == 0
    await _at(db, EXPIRES + timedelta(minutes=1))
    past = await _expiry(db).run()
    assert (past.points, past.reminders) == (120, 0)

    events = await _events(db)
    assert [(e["partner_id"], e["data"]["days_before"]) for e in events] == [
        (partner, 30),
        (partner, 7),
    ]
    for event in events:
        data = event["data"]
        assert sorted(data) == ["days_before", "expires_at", "member_id", "points"]
        assert (data["member_id"], data["points"]) == (member, 120)
        expires_at = datetime.fromisoformat(data["expires_at"])
        assert timedelta(0) <= expires_at - EXPIRES < timedelta(seconds=30)
        assert event["body"]["data"] == data
        assert event["body"]["type"] == "points.expiring"
    disclosures = await _disclosures(db)
    assert disclosures == [
        {
            "partner_id": partner,
            "member_id": member,
            "purpose": "customer_service",
            "fields": ["member.balance"],
            "contract_version": 1,
            "legal_basis": "legitimate_interest",
            "request_id": event["event_id"],
        }
        for event in events
    ]


async def test_none_to_a_partner_without_the_purpose_or_without_the_members_consent(
    db: Database,
) -> None:
    granted = await a_partner(db)
    without = await _partner_with(db, "")
    on_consent = await _partner_with(db, CUSTOMER_SERVICE.replace("legitimate_interest", "consent"))
    no_balance = await _partner_with(db, CUSTOMER_SERVICE.replace('"member.balance", ', ""))
    unrelated = await a_partner(db)
    member, consenting = await _member(db), await _member(db)
    for partner in (granted, without, on_consent, no_balance):
        await _issue(db, partner, member, 10)
        await _issue(db, partner, consenting, 10)
    members = Members(db, ContractBook(db), bytes(32))
    await members.record_consents_as_operator(
        consenting, [(on_consent, Purpose.CUSTOMER_SERVICE, True)]
    )

    await _at(db, EXPIRES - 10 * DAY)
    assert (await _expiry(db).run()).reminders == 3
    sent = {
        (e["partner_id"], e["data"]["member_id"], e["data"]["points"]) for e in await _events(db)
    }
    assert sent == {(granted, member, 40), (granted, consenting, 40), (on_consent, consenting, 40)}
    assert unrelated not in {e["partner_id"] for e in await _events(db)}
    bases = {(d["partner_id"], d["legal_basis"]) for d in await _disclosures(db)}
    assert bases == {(granted, "legitimate_interest"), (on_consent, "consent")}

    await members.record_consents_as_operator(
        consenting, [(on_consent, Purpose.CUSTOMER_SERVICE, False)]
    )
    await _at(db, EXPIRES - 6 * DAY)
    assert (await _expiry(db).run()).reminders == 2
    last = [(e["partner_id"], e["data"]["days_before"]) for e in await _events(db)][-2:]
    assert sorted(last) == sorted([(granted, 7), (granted, 7)])


async def test_a_reminder_found_late_is_sent_once_at_the_nearest_offset_for_the_free_points(
    db: Database,
) -> None:
    partner = await a_partner(db)
    member, erased = await _member(db), await _member(db)
    await _issue(db, partner, member, 100)
    await _issue(db, partner, erased, 100)
    async with db.transaction() as connection:
        await connection.execute(
            "UPDATE members SET erased_at = ledger_now() WHERE member_id = $1", erased
        )
    holds = Holds(db, ContractBook(db), _ledger(db))
    await _at(db, EXPIRES - 5 * DAY)
    await holds.authorize(
        partner,
        HoldRequest(member, 30, OCCURRED_AT, "pump 3", hold_seconds=86400),
        idempotency_key=unique("hold"),
    )
    assert (await _expiry(db).run()).reminders == 1
    await _at(db, EXPIRES - 2 * DAY)
    assert (await _expiry(db).run()).reminders == 0
    (event,) = await _events(db)
    assert (event["data"]["member_id"], event["data"]["points"]) == (member, 70)
    assert event["data"]["days_before"] == 7


def test_the_reminder_due_is_the_nearest_offset_reached_and_none_before_or_after() -> None:
    expires = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    offsets = (30, 7)
    assert reminder_due(expires - 30 * DAY - timedelta(seconds=1), expires, offsets) is None
    assert reminder_due(expires - 30 * DAY, expires, offsets) == 30
    assert reminder_due(expires - 7 * DAY - timedelta(seconds=1), expires, offsets) == 30
    assert reminder_due(expires - 7 * DAY, expires, offsets) == 7
    assert reminder_due(expires - timedelta(seconds=1), expires, offsets) == 7
    assert reminder_due(expires, expires, offsets) is None
    assert reminder_due(expires - DAY, expires, ()) is None


def test_lots_expiring_on_one_berlin_day_are_one_reminder_and_the_next_day_another() -> None:
    zone = ZoneInfo(ZONE)
    # 31 October 2026 is winter time in Berlin (UTC+1): 21:30 and 22:30 UTC are 22:30 and 23:30
    # on the 31st, 23:30 UTC is already 00:30 on 1 November.
    first = datetime(2026, 10, 31, 21, 30, tzinfo=UTC)
    expiring = [
        ExpiringPoints(first, 5),
        ExpiringPoints(datetime(2026, 10, 31, 22, 30, tzinfo=UTC), 7),
        ExpiringPoints(datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 11),
    ]
    now = first - 8 * DAY
    assert reminders_due(now, expiring, (30, 7), zone) == [
        DueReminder(date(2026, 10, 31), first, 12, 30),
        DueReminder(date(2026, 11, 1), datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 11, 30),
    ]
    assert [r.days_before for r in reminders_due(first - 7 * DAY, expiring, (30, 7), zone)] == [
        7,
        30,
    ]
