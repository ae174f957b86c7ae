"""Idempotency under concurrency, through HTTP: many signed retries of one request at once."""

from __future__ import annotations

import asyncio
import uuid

from tests.web.harness import SignedApi, ledger_snapshot
from tests.web.signing import verify_receipt

CONCURRENT = 50


async def test_fifty_concurrent_issues_with_one_idempotency_key_make_one_entry(
    api: SignedApi,
) -> None:
    partner = await api.partner()
    member = await api.member(balance=0)
    key = f"order-{uuid.uuid4()}"
    requests = [
        api.points("issue", partner, member, 17, idempotency_key=key) for _ in range(CONCURRENT)
    ]
    assert len({r.headers["signature-input"] for r in requests}) == CONCURRENT  # own nonces
    before = await ledger_snapshot(api.database)

    responses = await asyncio.gather(*(api.send(r) for r in requests))

    after = await ledger_snapshot(api.database)
    assert [r.status_code for r in responses] == [201] * CONCURRENT, [
        r.text for r in responses if r.status_code != 201
    ]
    entry_ids = {r.json()["entry_id"] for r in responses}
    assert len(entry_ids) == 1
    assert after.entries == before.entries + 1
    assert after.postings == before.postings + 2
    assert after.member_balances[member] == 17
    (new_key,) = after.idempotency_keys - before.idempotency_keys
    assert new_key == (partner.partner_id, key, uuid.UUID(entry_ids.pop()), None)
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == CONCURRENT - 1
    assert len({r.content for r in responses}) == 1
    for response in responses:
        verify_receipt(response, api.coalition_keys)


async def test_fifty_concurrent_redeems_never_take_a_member_below_zero(api: SignedApi) -> None:
    partner = await api.partner()
    member = await api.member(balance=100)
    requests = [api.points("redeem", partner, member, 7) for _ in range(CONCURRENT)]

    responses = await asyncio.gather(*(api.send(r) for r in requests))

    accepted = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(accepted) == 100 // 7
    assert {(r.status_code, r.json()["code"]) for r in refused} == {(409, "insufficient_points")}
    assert sorted(r.json()["member_balance"] for r in accepted) == list(range(100 % 7, 100, 7))
    snapshot = await ledger_snapshot(api.database)
    assert snapshot.member_balances[member] == 100 % 7
