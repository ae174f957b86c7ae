"""Events and webhook endpoints over the signed API, and deliveries for the operator."""

from __future__ import annotations

from typing import Any

import httpx

from tests.web.harness import Partner, SignedApi, assert_problem

RECEIVER = "http://127.0.0.1:9/hooks"
"""A sandbox URL (loopback is allowed in sandbox mode); nothing needs to listen for these tests."""


def endpoint_request(
    api: SignedApi, partner: Partner, url: str = RECEIVER, **fields: Any
) -> httpx.Request:
    knobs = {k: fields.pop(k) for k in ("idempotency_key",) if k in fields}
    body: dict[str, Any] = {"url": url, "event_types": ["entry.recorded"], **fields}
    return api.request(
        "POST", "/v1/webhook-endpoints", partner, body=body, purpose="settlement", **knobs
    )


def read(api: SignedApi, partner: Partner, path: str, **params: str | int) -> httpx.Request:
    return api.request("GET", path, partner, purpose="settlement", params=params or None)


async def test_a_partner_pages_its_own_events_from_a_cursor(
    api: SignedApi, partner: Partner
) -> None:
    other = await api.partner("other")
    member = await api.member()
    first = await api.issued(partner, member, 30)
    second = await api.issued(partner, member, 40)
    await api.issued(other, member, 50)

    page = await api.accepted(read(api, partner, "/v1/events/", limit=1000), 200)
    recorded = [e for e in page["events"] if e["type"] == "entry.recorded"]
    assert [e["data"]["entry_id"] for e in recorded] == [first["entry_id"], second["entry_id"]]
    assert all(e["event_id"].startswith("evt_") for e in page["events"])
    # Nothing of the other partner's, and nothing personal.
    assert {e["data"].get("points") for e in recorded} == {30, 40}
    # From the last cursor: nothing new yet, and the same cursor back.
    again = await api.accepted(read(api, partner, "/v1/events/", after=page["next_cursor"]), 200)
    assert (again["events"], again["next_cursor"]) == ([], page["next_cursor"])
    third = await api.issued(partner, member, 5)
    newer = await api.accepted(read(api, partner, "/v1/events/", after=page["next_cursor"]), 200)
    assert [e["data"]["entry_id"] for e in newer["events"]] == [third["entry_id"]]
    bad = await api.send(read(api, partner, "/v1/events/", after="not-ours"))
    assert_problem(bad, 400, "invalid_request")


async def test_an_endpoint_is_registered_read_listed_tested_and_deleted(
    api: SignedApi, partner: Partner
) -> None:
    made = await api.accepted(endpoint_request(api, partner, hmac_secret=True))
    assert made["endpoint_id"].startswith("we_")
    assert made["status"] == "active"
    assert made["secret"].startswith("whsec_")  # shown once
    endpoint_id = made["endpoint_id"]
    shown = await api.accepted(read(api, partner, f"/v1/webhook-endpoints/{endpoint_id}"), 200)
    assert "secret" not in shown
    assert shown["hmac_secret"] is True
    listed = await api.accepted(read(api, partner, "/v1/webhook-endpoints/"), 200)
    assert [e["endpoint_id"] for e in listed["endpoints"]] == [endpoint_id]

    tested = await api.accepted(
        api.request(
            "POST",
            f"/v1/webhook-endpoints/{endpoint_id}/test",
            partner,
            body={},
            purpose="settlement",
        ),
        202,
    )
    async with api.database.driver_connection() as connection:
        deliveries = await connection.fetch(
            "SELECT endpoint_id, status FROM webhook_deliveries WHERE event_id = $1",
            tested["event_id"],
        )
    assert [(d["endpoint_id"], d["status"]) for d in deliveries] == [(endpoint_id, "pending")]

    removed = await api.send(
        api.request("DELETE", f"/v1/webhook-endpoints/{endpoint_id}", partner, purpose="settlement")
    )
    assert removed.status_code == 204, removed.text
    async with api.database.driver_connection() as connection:
        status = await connection.fetchval(
            "SELECT status FROM webhook_deliveries WHERE event_id = $1", tested["event_id"]
        )
    assert status == "cancelled"
    gone = await api.send(read(api, partner, f"/v1/webhook-endpoints/{endpoint_id}"))
    assert_problem(gone, 404, "not_found")


async def test_an_endpoint_receives_only_its_partners_events_of_its_types(
    api: SignedApi, partner: Partner
) -> None:
    other = await api.partner("other")
    mine = await api.accepted(endpoint_request(api, partner))
    await api.accepted(endpoint_request(api, other, event_types=["hold.authorized"]))
    member = await api.member()
    issued = await api.issued(partner, member, 10)
    await api.issued(other, member, 10)
    async with api.database.driver_connection() as connection:
        rows = await connection.fetch(
            """
            SELECT d.endpoint_id, e.data->>'entry_id' AS entry_id
              FROM webhook_deliveries d JOIN events e USING (event_id)
             WHERE d.endpoint_id = ANY($1::text[])
            """,
            [mine["endpoint_id"]],
        )
    assert [(r["endpoint_id"], r["entry_id"]) for r in rows] == [
        (mine["endpoint_id"], issued["entry_id"])
    ]


async def test_endpoint_refusals(api: SignedApi, partner: Partner) -> None:
    unknown = await api.refused(
        endpoint_request(api, partner, event_types=["entry.recorded", "points.teleported"]),
        422,
        "unknown_event_type",
        receipt=True,
    )
    assert "points.teleported" in unknown["detail"]
    await api.refused(
        endpoint_request(api, partner, url="http://user:pass@127.0.0.1/hooks"),
        422,
        "invalid_webhook_url",
        receipt=True,
    )
    await api.refused(
        endpoint_request(api, partner, url="ftp://127.0.0.1/hooks"),
        422,
        "invalid_webhook_url",
        receipt=True,
    )
    for n in range(10):
        await api.accepted(endpoint_request(api, partner, url=f"{RECEIVER}/{n}"))
    await api.refused(endpoint_request(api, partner), 422, "limit_exceeded", receipt=True)
    other = await api.partner("other")
    listed = await api.accepted(read(api, other, "/v1/webhook-endpoints/"), 200)
    assert listed["endpoints"] == []


async def test_the_operator_lists_and_replays_deliveries(
    api: SignedApi, partner: Partner, operator: dict[str, str]
) -> None:
    made = await api.accepted(endpoint_request(api, partner))
    member = await api.member()
    await api.issued(partner, member, 10)
    async with api.database.driver_connection() as connection:
        delivery_id, event_id = await connection.fetchrow(
            "SELECT delivery_id, event_id FROM webhook_deliveries WHERE endpoint_id = $1",
            made["endpoint_id"],
        )
        await connection.execute(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = 10 WHERE delivery_id = $1",
            delivery_id,
        )
    failed = await api.client.get(
        "/v1/admin/webhook-deliveries", params={"status": "failed"}, headers=operator
    )
    assert failed.status_code == 200, failed.text
    assert delivery_id in [d["delivery_id"] for d in failed.json()["deliveries"]]
    replayed = await api.client.post(
        f"/v1/admin/webhook-deliveries/{delivery_id}/replay", headers=operator
    )
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["status"], replayed.json()["event_id"]) == ("pending", event_id)
    removed = await api.send(
        api.request(
            "DELETE", f"/v1/webhook-endpoints/{made['endpoint_id']}", partner, purpose="settlement"
        )
    )
    assert removed.status_code == 204
    gone = await api.client.post(
        f"/v1/admin/webhook-deliveries/{delivery_id}/replay", headers=operator
    )
    assert_problem(gone, 404, "not_found")  # its endpoint was deleted: nothing to send to
    missing = await api.client.post(
        "/v1/admin/webhook-deliveries/999999999/replay", headers=operator
    )
    assert_problem(missing, 404, "not_found")
    nobody = await api.client.get("/v1/admin/webhook-deliveries")
    assert_problem(nobody, 401, "invalid_token")


async def test_a_retried_registration_or_test_with_its_key_makes_nothing_twice(
    api: SignedApi, partner: Partner
) -> None:
    first = await api.send(
        endpoint_request(api, partner, idempotency_key="hook-1", hmac_secret=True)
    )
    again = await api.send(
        endpoint_request(api, partner, idempotency_key="hook-1", hmac_secret=True)
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["endpoint_id"] == first.json()["endpoint_id"]
    assert "secret" in first.json()
    assert "secret" not in again.json()  # shown once, never again
    await api.refused(
        endpoint_request(api, partner, url=f"{RECEIVER}/other", idempotency_key="hook-1"),
        422,
        "idempotency_key_reused",
        receipt=True,
    )
    listed = await api.accepted(read(api, partner, "/v1/webhook-endpoints/"), 200)
    assert len(listed["endpoints"]) == 1
    endpoint_id = first.json()["endpoint_id"]

    def test_request() -> httpx.Request:
        return api.request(
            "POST",
            f"/v1/webhook-endpoints/{endpoint_id}/test",
            partner,
            body={},
            purpose="settlement",
            idempotency_key="ping-1",
        )

    sent = [await api.accepted(test_request(), 202) for _ in range(2)]
    assert sent[0]["event_id"] == sent[1]["event_id"]
    async with api.database.driver_connection() as connection:
        deliveries = await connection.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE event_id = $1", sent[0]["event_id"]
        )
    assert deliveries == 1


async def test_cursors_out_of_range_are_bad_requests_not_errors(
    api: SignedApi, partner: Partner
) -> None:
    import base64

    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for cursor in (b64(f"{2**70}.1"), b64(f"1.{2**64}")):
        response = await api.send(read(api, partner, "/v1/events/", after=cursor))
        assert_problem(response, 400, "invalid_request")
    uuid_text = "00000000-0000-4000-8000-000000000000"
    for moment in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "2026-01-01T00:00:00"):
        response = await api.send(
            api.request(
                "GET",
                "/v1/holds/",
                partner,
                purpose="redemption",
                params={"cursor": b64(f"{moment}|{uuid_text}")},
            )
        )
        assert_problem(response, 400, "invalid_request")
