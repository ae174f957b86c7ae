"""Batches over the signed API: many issues or many redeems in one request, each item by the
rules of a single one, refused items leaving nothing behind, atomic batches all or nothing, and
replays of items and of whole batches."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from clearhouse_client import AsyncPartnerClient, BatchItem, BatchNotApplied
from tests.web.harness import OCCURRED_AT, Partner, SignedApi, assert_problem, ledger_snapshot

BATCH = "/v1/transactions/batch"


def item(kind: str, member_id: str, points: object, **fields: object) -> dict[str, Any]:
    return {
        "kind": kind,
        "idempotency_key": str(uuid.uuid4()),
        "member_id": member_id,
        "points": points,
        "occurred_at": OCCURRED_AT,
        "reference": "till 2",
        **fields,
    }


def batch_request(
    api: SignedApi,
    partner: Partner,
    items: list[dict[str, Any]],
    purpose: str = "accrual",
    **body: Any,
) -> httpx.Request:
    knobs = {k: body.pop(k) for k in ("idempotency_key",) if k in body}
    return api.request(
        "POST", BATCH, partner, body={"items": items, **body}, purpose=purpose, **knobs
    )


async def balance_of(api: SignedApi, member_id: str) -> int:
    async with api.database.driver_connection() as connection:
        value = await connection.fetchval(
            "SELECT balance_points FROM member_balances WHERE member_id = $1", member_id
        )
    return int(value)


async def test_a_batch_of_issues_records_each_item_in_order_with_the_members_balance(
    api: SignedApi, partner: Partner
) -> None:
    first, second = await api.member(), await api.member()
    items = [item("issue", first, 10), item("issue", second, 5), item("issue", first, 7)]

    answer = await api.accepted(batch_request(api, partner, items), status=200)

    assert (answer["atomic"], answer["posted"], answer["refused"]) == (False, 3, 0)
    results = answer["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["idempotency_key"] for r in results] == [i["idempotency_key"] for i in items]
    assert [r["status"] for r in results] == [201, 201, 201]
    assert [r["replayed"] for r in results] == [False, False, False]
    assert [r["entry"]["member_balance"] for r in results] == [10, 5, 17]
    assert {r["entry"]["kind"] for r in results} == {"issue"}
    assert (await balance_of(api, first), await balance_of(api, second)) == (17, 5)


async def test_a_refused_item_leaves_nothing_behind_and_the_others_stand(
    api: SignedApi, partner: Partner
) -> None:
    rich, poor = await api.member(balance=100), await api.member(balance=5)
    items = [
        item("redeem", rich, 60),
        item("redeem", rich, 60),  # only 40 left
        item("redeem", poor, 0),
        item("issue", poor, 3),  # an issue has no place in a batch for redemption
        item("redeem", "m-nobody-" + uuid.uuid4().hex, 1),
        item("redeem", poor, 5),
    ]
    before = await ledger_snapshot(api.database)

    answer = await api.accepted(batch_request(api, partner, items, "redemption"), status=200)

    codes = [r["problem"]["code"] if "problem" in r else r["status"] for r in answer["results"]]
    assert codes == [
        201,
        "insufficient_points",
        "invalid_request",
        "purpose_not_permitted",
        "unknown_member",
        201,
    ]
    assert [r["status"] for r in answer["results"]] == [201, 409, 400, 403, 422, 201]
    assert (answer["posted"], answer["refused"]) == (2, 4)
    invalid = answer["results"][2]["problem"]
    assert invalid["errors"] == [{"detail": invalid["detail"], "pointer": "#/items/2/points"}]
    after = await ledger_snapshot(api.database)
    assert after.entries == before.entries + 2
    assert (await balance_of(api, rich), await balance_of(api, poor)) == (40, 0)


async def test_an_atomic_batch_with_a_refused_item_writes_nothing(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member(balance=50)
    items = [item("redeem", member, 30), item("redeem", member, 30), item("redeem", member, 1)]

    problem = await api.refused(
        batch_request(api, partner, items, "redemption", atomic=True),
        409,
        "batch_not_applied",
        receipt=True,
    )

    assert [(r["index"], r["problem"]["code"]) for r in problem["refused"]] == [
        (1, "insufficient_points")
    ]
    assert await balance_of(api, member) == 50


async def test_an_atomic_batch_refused_before_the_database_names_every_refused_item(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member(balance=50)
    items = [item("redeem", member, -1), item("redeem", member, 1), item("issue", member, 1)]

    problem = await api.refused(
        batch_request(api, partner, items, "redemption", atomic=True), 409, "batch_not_applied"
    )

    assert [(r["index"], r["status"]) for r in problem["refused"]] == [(0, 400), (2, 403)]


async def test_an_atomic_batch_that_passes_records_every_item(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    items = [item("issue", member, 1), item("issue", member, 2)]

    answer = await api.accepted(batch_request(api, partner, items, atomic=True), status=200)

    assert (answer["atomic"], answer["posted"]) == (True, 2)
    assert await balance_of(api, member) == 3


async def test_a_batch_retried_under_its_key_is_answered_the_same_and_writes_nothing_more(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member(balance=10)
    items = [item("redeem", member, 4), item("redeem", member, 40)]
    key = str(uuid.uuid4())
    first = await api.send(batch_request(api, partner, items, "redemption", idempotency_key=key))
    assert first.status_code == 200, first.text
    before = await ledger_snapshot(api.database)

    again = await api.send(batch_request(api, partner, items, "redemption", idempotency_key=key))

    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    assert await ledger_snapshot(api.database) == before


async def test_a_batch_key_used_with_other_items_is_refused(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    key = str(uuid.uuid4())
    items = [item("issue", member, 4)]
    await api.accepted(batch_request(api, partner, items, idempotency_key=key), status=200)

    changed = [{**items[0], "points": 5}]
    await api.refused(
        batch_request(api, partner, changed, idempotency_key=key), 422, "idempotency_key_reused"
    )
    atomic = batch_request(api, partner, items, idempotency_key=key, atomic=True)
    await api.refused(atomic, 422, "idempotency_key_reused")


async def test_an_item_under_the_key_of_an_earlier_single_request_replays_it(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    key = str(uuid.uuid4())
    single = await api.accepted(api.points("issue", partner, member, 8, idempotency_key=key))
    same = item("issue", member, 8, idempotency_key=key, reference="receipt 4711")
    other = item("issue", member, 9, idempotency_key=key, reference="receipt 4711")

    answer = await api.accepted(batch_request(api, partner, [same]), status=200)
    reused = await api.accepted(batch_request(api, partner, [other]), status=200)

    replay = answer["results"][0]
    assert (replay["status"], replay["replayed"]) == (201, True)
    assert replay["entry"]["entry_id"] == single["entry_id"]
    refusal = reused["results"][0]
    assert refusal["problem"]["code"] == "idempotency_key_reused"
    assert "points" in refusal["problem"]["detail"]
    assert await balance_of(api, member) == 8


async def test_a_batch_whose_items_share_a_key_is_refused_whole(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    twin = item("issue", member, 1)
    problem = await api.refused(batch_request(api, partner, [twin, twin]), 400, "invalid_request")
    assert problem["errors"][0]["pointer"] == "#/items/1/idempotency_key"


async def test_a_batch_holds_one_to_a_thousand_items(api: SignedApi, partner: Partner) -> None:
    member = await api.member()
    await api.refused(batch_request(api, partner, []), 400, "invalid_request")
    many = [item("issue", member, 1) for _ in range(1001)]
    await api.refused(batch_request(api, partner, many), 400, "invalid_request")

    answer = await api.accepted(batch_request(api, partner, many[:1000]), status=200)

    assert answer["posted"] == 1000
    assert await balance_of(api, member) == 1000


async def test_a_batch_body_past_its_limit_is_refused_before_it_is_read(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    filler = "x" * 200
    items = [item("issue", member, 1, metadata={"note": filler}) for _ in range(1000)]
    big = batch_request(api, partner, items)
    assert 65536 < len(big.content) < api.settings.batch_body_max_bytes
    before = await ledger_snapshot(api.database)
    await api.accepted(big, status=200)
    assert (await ledger_snapshot(api.database)).entry_metadata == before.entry_metadata + 1000

    huge = [item("issue", member, 1, metadata={"note": "x" * 1200}) for _ in range(1000)]
    await api.refused(batch_request(api, partner, huge), 413, "payload_too_large")


async def test_a_batch_serves_accrual_or_redemption_and_only_as_the_contract_grants(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    items = [item("issue", member, 1)]
    for purpose in ("marketing", "settlement", "accrual, redemption"):
        await api.refused(batch_request(api, partner, items, purpose), 403, "purpose_not_permitted")


async def test_item_problems_name_the_item_and_the_limit(api: SignedApi) -> None:
    partner = await api.partner("capped", {"max_points_per_transaction": 50})
    member = await api.member()
    items = [item("issue", member, 50), item("issue", member, 51, metadata={"a": "\u0000"})]
    problem = await api.refused(batch_request(api, partner, items), 400, "invalid_request")
    assert problem["errors"][0]["pointer"] == "#/items/1/metadata"

    items[1].pop("metadata")
    answer = await api.accepted(batch_request(api, partner, items), status=200)
    assert answer["results"][1]["problem"]["code"] == "limit_exceeded"


async def test_twin_batches_sent_together_record_their_items_once(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    items = [item("issue", member, 3) for _ in range(20)]
    key = str(uuid.uuid4())
    requests = [batch_request(api, partner, items, idempotency_key=key) for _ in range(2)]

    answers = await asyncio.gather(*(api.send(r) for r in requests))

    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 200], [200, 409]), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "idempotency_key_in_use")
    assert await balance_of(api, member) == 60


async def test_batches_of_items_sharing_keys_sent_together_record_each_item_once(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    items = [item("issue", member, 1) for _ in range(30)]
    requests = [batch_request(api, partner, items) for _ in range(3)]  # each its own batch key

    answers = await asyncio.gather(*(api.send(r) for r in requests))

    for answer in answers:
        assert answer.status_code == 200, answer.text
        for result in answer.json()["results"]:
            assert result["status"] == 201 or result["problem"]["code"] in (
                "idempotency_key_in_use",
                "unavailable",
            )
    assert await balance_of(api, member) == 30


async def test_the_partner_client_sends_batches_and_checks_their_receipt(
    api: SignedApi, partner: Partner
) -> None:
    member = await api.member()
    async with AsyncPartnerClient(
        api.base_url,
        key_id=partner.key.key_id,
        private_key=partner.key.private_key,
        transport=httpx.ASGITransport(app=api.app),
    ) as client:
        issues = [
            BatchItem(kind="issue", member_id=member, points=n, reference="r") for n in (4, 6)
        ]
        issued = await client.batch(issues)
        assert [r.entry.member_balance for r in issued.results if r.entry] == [4, 10]

        redeems = [
            BatchItem(kind="redeem", member_id=member, points=n, reference="r") for n in (7, 7)
        ]
        with pytest.raises(BatchNotApplied) as refused:
            await client.batch(redeems, atomic=True)
        assert [r["index"] for r in refused.value.refused] == [1]
        partial = await client.batch(redeems)
        assert [r.status for r in partial.results] == [201, 409]
        assert partial.results[1].problem is not None
        assert partial.results[1].problem.code == "insufficient_points"

        with pytest.raises(ValueError, match="only issues or only redeems"):
            await client.batch([*issues, *redeems])
    assert await balance_of(api, member) == 3
