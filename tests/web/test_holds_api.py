"""Holds over the signed API: authorize, capture (for less), void, read, list; replays after the
hold ended; each refusal with its code, the hold's state named, and nothing written."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from clearhouse.domain.holds import HOLD_SECONDS_DEFAULT
from tests.web.harness import OCCURRED_AT, Partner, SignedApi, assert_problem


def hold_request(
    api: SignedApi,
    partner: Partner,
    member_id: str,
    points: object,
    **fields: object,
) -> httpx.Request:
    body: dict[str, Any] = {
        "member_id": member_id,
        "points": points,
        "reference": "pump 3",
        "occurred_at": OCCURRED_AT,
        **fields,
    }
    knobs = {k: body.pop(k) for k in ("idempotency_key",) if k in body}
    return api.request("POST", "/v1/holds", partner, body=body, purpose="redemption", **knobs)


def capture_request(
    api: SignedApi, partner: Partner, hold_id: str, points: int | None = None, **knobs: Any
) -> httpx.Request:
    body = {} if points is None else {"points": points}
    return api.request(
        "POST", f"/v1/holds/{hold_id}/capture", partner, body=body, purpose="redemption", **knobs
    )


def void_request(api: SignedApi, partner: Partner, hold_id: str, **knobs: Any) -> httpx.Request:
    return api.request(
        "POST",
        f"/v1/holds/{hold_id}/void",
        partner,
        body={"reason": "order cancelled"},
        purpose="redemption",
        **knobs,
    )


def read_request(api: SignedApi, partner: Partner, path: str, **params: str | int) -> httpx.Request:
    return api.request("GET", path, partner, purpose="redemption", params=params or None)


async def test_a_hold_captured_for_less_redeems_that_and_releases_the_rest(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 5000)
    hold = await api.accepted(hold_request(api, partner, member, 1200))
    assert hold["status"] == "open"
    assert (hold["points"], hold["member_balance"], hold["member_held"]) == (1200, 5000, 1200)
    assert hold["member_available"] == 3800
    assert hold["closed_at"] is None
    assert hold["capture_entry_id"] is None

    captured = await api.accepted(capture_request(api, partner, hold["hold_id"], 900))
    assert captured["status"] == "captured"
    assert captured["captured_points"] == 900
    entry = captured["entry"]
    assert (entry["kind"], entry["points"], entry["member_balance"]) == ("redeem", 900, 4100)
    assert captured["capture_entry_id"] == entry["entry_id"]
    assert (captured["member_balance"], captured["member_held"]) == (4100, 0)
    assert captured["member_available"] == 4100

    read = await api.accepted(read_request(api, partner, f"/v1/holds/{hold['hold_id']}"), 200)
    assert read["status"] == "captured"
    assert read["captured_points"] == 900
    assert "member_balance" not in read  # a read names no balances
    ledger_entry = await api.accepted(
        api.request("GET", f"/v1/transactions/{entry['entry_id']}", partner), 200
    )
    assert (ledger_entry["kind"], ledger_entry["points"]) == ("redeem", 900)


async def test_a_capture_without_points_takes_all_the_hold_reserved(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 300)
    hold = await api.accepted(hold_request(api, partner, member, 300))
    assert hold["member_available"] == 0
    captured = await api.accepted(capture_request(api, partner, hold["hold_id"]))
    assert captured["captured_points"] == 300
    assert (captured["member_balance"], captured["member_held"]) == (0, 0)


async def test_holds_count_against_the_available_points_of_a_redeem(
    api: SignedApi, partner: Partner
) -> None:
    """Six holds of 1,000 against 5,000: the sixth is refused, and so is a redeem of what only
    the balance (not the available points) would cover."""
    member = await api.member()
    await api.issued(partner, member, 5000)
    for _ in range(5):
        await api.accepted(hold_request(api, partner, member, 1000))
    refused = await api.refused(
        hold_request(api, partner, member, 1000), 409, "insufficient_points", receipt=True
    )
    assert "available" in refused["detail"]
    await api.refused(
        api.points("redeem", partner, member, 1), 409, "insufficient_points", receipt=True
    )


async def test_a_void_releases_the_points_and_a_second_void_or_a_capture_is_refused(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 800)
    hold = await api.accepted(hold_request(api, partner, member, 800))
    voided = await api.accepted(void_request(api, partner, hold["hold_id"]), 200)
    assert voided["status"] == "voided"
    assert voided["closed_at"] is not None
    assert (voided["member_balance"], voided["member_held"], voided["member_available"]) == (
        800,
        0,
        800,
    )
    again = await api.refused(
        void_request(api, partner, hold["hold_id"]), 409, "hold_already_voided", receipt=True
    )
    assert again["hold_status"] == "voided"
    capture = await api.refused(
        capture_request(api, partner, hold["hold_id"]), 409, "hold_already_voided", receipt=True
    )
    assert capture["hold_status"] == "voided"


async def test_a_captured_hold_cannot_be_captured_again_or_voided(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 500)
    hold = await api.accepted(hold_request(api, partner, member, 500))
    await api.accepted(capture_request(api, partner, hold["hold_id"], 100))
    for request in (
        capture_request(api, partner, hold["hold_id"], 100),
        void_request(api, partner, hold["hold_id"]),
    ):
        refused = await api.refused(request, 409, "hold_already_captured", receipt=True)
        assert refused["hold_status"] == "captured"


async def test_a_capture_of_more_than_the_hold_or_of_nothing_is_refused(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 2000)
    hold = await api.accepted(hold_request(api, partner, member, 500))
    await api.refused(
        capture_request(api, partner, hold["hold_id"], 501), 422, "capture_exceeds_hold"
    )
    zero = await api.refused(
        capture_request(api, partner, hold["hold_id"], 0), 400, "invalid_request"
    )
    assert zero["errors"][0]["pointer"] == "#/points"
    assert "void" in zero["detail"]
    # The hold is still open and whole after both refusals.
    read = await api.accepted(read_request(api, partner, f"/v1/holds/{hold['hold_id']}"), 200)
    assert read["status"] == "open"


async def test_a_replay_answers_as_the_first_time_even_after_the_hold_ended(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 1000)
    first_request = hold_request(api, partner, member, 400, idempotency_key="pump-3-auth")
    first = await api.send(first_request)
    assert first.status_code == 201
    hold_id = first.json()["hold_id"]
    capture_first = await api.send(
        capture_request(api, partner, hold_id, 250, idempotency_key="pump-3-cap")
    )
    assert capture_first.status_code == 201

    replayed = await api.send(
        hold_request(api, partner, member, 400, idempotency_key="pump-3-auth")
    )
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == first.json()  # still "open", with the balances of then

    capture_again = await api.send(
        capture_request(api, partner, hold_id, 250, idempotency_key="pump-3-cap")
    )
    assert capture_again.status_code == 201
    assert capture_again.headers["Idempotent-Replayed"] == "true"
    assert capture_again.json() == capture_first.json()

    reused = await api.refused(
        capture_request(api, partner, hold_id, 200, idempotency_key="pump-3-cap"),
        422,
        "idempotency_key_reused",
    )
    assert "different request" in reused["detail"]


async def test_another_partners_hold_is_not_found_for_every_call(
    api: SignedApi, partner: Partner
) -> None:
    other = await api.partner("other")
    member = await api.member()
    await api.issued(partner, member, 1000)
    hold = await api.accepted(hold_request(api, partner, member, 100))
    unknown = "00000000-0000-4000-8000-000000000000"
    for hold_id in (hold["hold_id"], unknown):
        await api.refused(capture_request(api, other, hold_id), 404, "not_found", receipt=True)
        await api.refused(void_request(api, other, hold_id), 404, "not_found", receipt=True)
        response = await api.send(read_request(api, other, f"/v1/holds/{hold_id}"))
        assert_problem(response, 404, "not_found")
    listed = await api.accepted(read_request(api, other, "/v1/holds/"), 200)
    assert listed["holds"] == []


async def test_hold_time_defaults_to_a_day_and_the_contract_caps_it(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 1000)
    hold = await api.accepted(hold_request(api, partner, member, 10))

    made = datetime.fromisoformat(hold["created_at"])
    expires = datetime.fromisoformat(hold["expires_at"])
    assert (expires - made).total_seconds() == HOLD_SECONDS_DEFAULT
    # The builders' contracts name no max_hold_seconds: seven days is the cap.
    await api.accepted(hold_request(api, partner, member, 10, hold_seconds=7 * 86_400))
    refused = await api.refused(
        hold_request(api, partner, member, 10, hold_seconds=7 * 86_400 + 1),
        422,
        "limit_exceeded",
        receipt=True,
    )
    assert "604800 seconds" in refused["detail"]
    bad = await api.refused(
        hold_request(api, partner, member, 10, hold_seconds=0), 400, "invalid_request"
    )
    assert bad["errors"][0]["pointer"] == "#/hold_seconds"


async def test_holds_list_pages_by_keyset_and_filters_by_status(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 1000)
    made = [
        (await api.accepted(hold_request(api, partner, member, 10)))["hold_id"] for _ in range(5)
    ]
    await api.accepted(void_request(api, partner, made[1]), 200)
    await api.accepted(capture_request(api, partner, made[3], 5))

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await api.accepted(read_request(api, partner, "/v1/holds/", **params), 200)
        seen += [h["hold_id"] for h in page["holds"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made

    def ids(body: dict[str, Any]) -> list[str]:
        return [h["hold_id"] for h in body["holds"]]

    open_ = await api.accepted(read_request(api, partner, "/v1/holds/", status="open"), 200)
    assert ids(open_) == [made[0], made[2], made[4]]
    voided = await api.accepted(read_request(api, partner, "/v1/holds/", status="voided"), 200)
    assert ids(voided) == [made[1]]
    captured = await api.accepted(read_request(api, partner, "/v1/holds/", status="captured"), 200)
    assert ids(captured) == [made[3]]
    bad = await api.send(read_request(api, partner, "/v1/holds/", status="pending"))
    assert_problem(bad, 400, "invalid_request")


async def test_the_authorization_metadata_stays_with_the_capture_entry_only(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 1000)
    kept = await api.accepted(
        hold_request(api, partner, member, 100, metadata={"pump": 3, "litres": "est. 40"})
    )
    dropped = await api.accepted(hold_request(api, partner, member, 100, metadata={"pump": 4}))
    captured = await api.accepted(capture_request(api, partner, kept["hold_id"], 60))
    await api.accepted(void_request(api, partner, dropped["hold_id"]), 200)
    async with api.database.driver_connection() as connection:
        on_entry = await connection.fetchval(
            "SELECT metadata::text FROM entry_metadata WHERE entry_id = $1",
            uuid.UUID(captured["entry"]["entry_id"]),
        )
        left = await connection.fetch(
            "SELECT metadata FROM holds WHERE hold_id = ANY($1::uuid[])",
            [kept["hold_id"], dropped["hold_id"]],
        )
    assert on_entry is not None
    assert '"pump": 3' in on_entry
    assert [row["metadata"] for row in left] == [None, None]


async def test_a_hold_needs_the_redemption_purpose(api: SignedApi, partner: Partner) -> None:
    member = await api.member()
    await api.issued(partner, member, 100)
    body = {"member_id": member, "points": 10, "reference": "x", "occurred_at": OCCURRED_AT}
    await api.refused(
        api.request("POST", "/v1/holds", partner, body=body, purpose="accrual"),
        403,
        "purpose_not_permitted",
        receipt=True,
    )


async def test_erasing_a_member_drops_what_an_open_hold_was_sent_with(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    await api.issued(partner, member, 1000)
    hold = await api.accepted(
        hold_request(api, partner, member, 100, metadata={"name": "Jana Novak"})
    )
    from clearhouse.config import SANDBOX_MASTER_KEY
    from clearhouse.services.contracts import ContractBook
    from clearhouse.services.members import Members

    await Members(api.database, ContractBook(api.database), SANDBOX_MASTER_KEY).erase(member)
    async with api.database.driver_connection() as connection:
        row = await connection.fetchrow(
            "SELECT status, metadata FROM holds WHERE hold_id = $1", uuid.UUID(hold["hold_id"])
        )
    assert (row["status"], row["metadata"]) == ("open", None)
    # The guard lets an open hold lose its metadata alone, nothing else.
    async with api.database.driver_connection() as connection:
        with pytest.raises(asyncpg.PostgresError):
            await connection.execute(
                "UPDATE holds SET metadata = '{}'::jsonb WHERE hold_id = $1",
                uuid.UUID(hold["hold_id"]),
            )
