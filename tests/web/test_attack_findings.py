"""What an outside attack on the signed API found, each as the answer it must now get.

Replays carrying two signatures, more labels than a request needs, duplicate JSON keys, bad
input that used to be a 500, a refused reversal or an enrolment key answering for another
request, and target URIs and member ids that could not be read back.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.database import Database
from clearhouse.web.signatures import SIGNATURE_FIELD_BYTES_MAX, SIGNATURE_LABELS_MAX
from tests.web.harness import OCCURRED_AT, Partner, SignedApi, assert_problem, utc_now
from tests.web.signing import add_signature, altered, partner_request


def _raw_points(api: SignedApi, partner: Partner, kind: str, body: bytes) -> httpx.Request:
    """A signed issue or redeem whose body is exactly ``body`` (not re-encoded)."""
    return api.request("POST", f"/v1/transactions/{kind}", partner, body=body)


# --- 1. a replay is final for the whole request ---------------------------------------------


async def test_a_request_with_two_valid_signatures_cannot_be_replayed(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    add_signature(request, partner.key, label="sig2")
    await api.accepted(request)
    await api.refused(altered(request), 401, "replayed_request")


async def test_every_verifying_label_s_nonce_is_recorded(
    api: SignedApi, partner: Partner, member: str
) -> None:
    """The second signature alone, cut out of an accepted request, is a replay too."""
    request = api.points("issue", partner, member, 5)
    add_signature(request, partner.key, label="sig2")
    await api.accepted(request)
    members = {
        name: dict(part.strip().split("=", 1) for part in _split_members(request.headers[name]))[
            "sig2"
        ]
        for name in ("signature-input", "signature")
    }
    second_only = altered(
        request,
        set_headers={
            "Signature-Input": f"sig2={members['signature-input']}",
            "Signature": f"sig2={members['signature']}",
        },
    )
    await api.refused(second_only, 401, "replayed_request")


def _split_members(value: str) -> list[str]:
    """The members of a signature dictionary field (labels are at the top level)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(value):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(value[start:index])
            start = index + 1
    return [*parts, value[start:]]


async def test_a_consent_grant_replayed_with_two_signatures_does_not_undo_a_withdrawal(
    api: SignedApi, partner: Partner
) -> None:
    member_id = await api.enrolled(partner)
    path = f"/v1/members/{member_id}/consents"
    grant = {"consents": [{"purpose": "marketing", "granted": True}]}
    granting = api.request("PUT", path, partner, body=grant, purpose="consent_management")
    add_signature(granting, partner.key, label="sig2")
    await api.accepted(granting, 200)
    withdraw = {"consents": [{"purpose": "marketing", "granted": False}]}
    await api.accepted(
        api.request("PUT", path, partner, body=withdraw, purpose="consent_management"), 200
    )
    response = await api.send(altered(granting))
    assert_problem(response, 401, "replayed_request")
    read = api.request("GET", f"/v1/members/{member_id}", partner, purpose="marketing")
    assert_problem(await api.send(read), 403, "consent_required")


# --- 3. limits on the signature fields -------------------------------------------------------


async def test_more_signature_labels_than_the_limit_are_refused_before_any_key_lookup(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    for index in range(SIGNATURE_LABELS_MAX):
        add_signature(request, partner.key, label=f"extra{index}")
    body = await api.refused(request, 401, "invalid_signature")
    assert str(SIGNATURE_LABELS_MAX) in body["detail"]


async def test_as_many_labels_as_the_limit_are_accepted(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    for index in range(SIGNATURE_LABELS_MAX - 1):
        add_signature(request, partner.key, label=f"extra{index}")
    await api.accepted(request)


def _with_labels(request: httpx.Request, count: int) -> httpx.Request:
    """The request with its one signature repeated under ``count`` labels."""
    signature_input = request.headers["signature-input"].split("=", 1)[1]
    signature = request.headers["signature"].split("=", 1)[1]
    return altered(
        request,
        set_headers={
            "Signature-Input": ", ".join(f"l{i}={signature_input}" for i in range(count)),
            "Signature": ", ".join(f"l{i}={signature}" for i in range(count)),
        },
    )


async def test_two_thousand_labels_naming_a_real_key_are_refused_with_431(
    api: SignedApi, partner: Partner, member: str
) -> None:
    """The finding's request is over the header limit: refused before any signature work."""
    many = _with_labels(api.points("issue", partner, member, 5), 2000)
    await api.refused(many, 431, "request_header_fields_too_large")


async def test_sixty_labels_under_the_header_limit_are_refused_by_the_field_size(
    api: SignedApi, partner: Partner, member: str
) -> None:
    many = _with_labels(api.points("issue", partner, member, 5), 60)
    assert sum(len(v) for v in many.headers.values()) < 32 * 1024
    await api.refused(many, 401, "invalid_signature")


async def test_a_signature_field_over_its_size_limit_is_refused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    padded = request.headers["signature-input"] + ";tag=" + '"' + "x" * SIGNATURE_FIELD_BYTES_MAX
    body = await api.refused(
        altered(request, set_headers={"Signature-Input": padded + '"'}), 401, "invalid_signature"
    )
    assert "bytes" in body["detail"]


# --- 4. duplicate JSON keys ------------------------------------------------------------------


async def test_a_body_with_a_duplicate_key_is_refused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    other = await api.member()
    body = (
        f'{{"member_id":"{member}","points":1,"occurred_at":"{OCCURRED_AT}",'
        f'"reference":"r1","member_id":"{other}","points":1000}}'
    ).encode()
    problem = await api.refused(
        _raw_points(api, partner, "issue", body), 400, "invalid_request", receipt=True
    )
    assert "member_id" in problem["detail"]


async def test_a_duplicate_key_deep_inside_metadata_is_refused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = (
        f'{{"member_id":"{member}","points":1,"occurred_at":"{OCCURRED_AT}",'
        '"reference":"r1","metadata":{"basket":[{"sku":"a","sku":"b"}]}}'
    ).encode()
    await api.refused(
        _raw_points(api, partner, "issue", body), 400, "invalid_request", receipt=True
    )


async def test_an_operator_body_with_a_duplicate_key_is_refused(
    api: SignedApi, operator: dict[str, str]
) -> None:
    response = await api.client.post(
        "/v1/admin/partners",
        content=b'{"partner_id":"dup-a","legal_name":"A GmbH","partner_id":"dup-b"}',
        headers={**operator, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_request")
    listing = await api.client.get("/v1/admin/partners", headers=operator)
    assert not {"dup-a", "dup-b"} & {p["partner_id"] for p in listing.json()}


# --- 5. bad input is a 400, never a 500 ------------------------------------------------------


async def test_an_occurred_at_that_overflows_in_utc_is_invalid_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        request = api.points("issue", partner, member, 5)
        body = request.content.replace(OCCURRED_AT.encode(), moment.encode())
        await api.refused(
            _raw_points(api, partner, "issue", body), 400, "invalid_request", receipt=True
        )


async def test_invalid_utf8_inside_a_json_string_is_invalid_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = (
        f'{{"member_id":"{member}","points":1,"occurred_at":"{OCCURRED_AT}",'
        '"reference":"r\xff\xfe"}'
    ).encode("latin-1")
    await api.refused(
        _raw_points(api, partner, "issue", body), 400, "invalid_request", receipt=True
    )


async def test_deeply_nested_json_is_invalid_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    deep = "[" * 5000 + "]" * 5000
    body = (
        f'{{"member_id":"{member}","points":1,"occurred_at":"{OCCURRED_AT}",'
        f'"reference":"r1","metadata":{{"deep":{deep}}}}}'
    ).encode()
    await api.refused(
        _raw_points(api, partner, "issue", body), 400, "invalid_request", receipt=True
    )


async def test_deeply_nested_json_to_an_operator_route_is_invalid_request(
    api: SignedApi, operator: dict[str, str]
) -> None:
    response = await api.client.post(
        "/v1/admin/partners",
        content=b'{"partner_id":' + b"[" * 5000 + b"]" * 5000 + b"}",
        headers={**operator, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "invalid_request")


async def test_a_disclosure_log_range_that_overflows_in_utc_is_invalid_request(
    api: SignedApi, operator: dict[str, str]
) -> None:
    for start, end in (
        ("0001-01-01T00:00:00+01:00", "2030-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"),
    ):
        response = await api.client.get(
            "/v1/audit/disclosures", params={"from": start, "to": end}, headers=operator
        )
        assert_problem(response, 400, "invalid_request")


async def test_a_clock_beyond_the_calendar_in_utc_is_invalid_request(
    api: SignedApi, operator: dict[str, str]
) -> None:
    async with api.database.driver_connection() as connection:
        saved = await connection.fetchval("SELECT offset_interval FROM ledger_clock")
    try:
        for moment in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
            response = await api.client.put(
                "/v1/admin/clock", json={"at": moment}, headers=operator
            )
            assert_problem(response, 400, "invalid_request")
        async with api.database.driver_connection() as connection:
            assert await connection.fetchval("SELECT offset_interval FROM ledger_clock") == saved
    finally:
        async with api.database.driver_connection() as connection:
            await connection.execute("UPDATE ledger_clock SET offset_interval = $1", saved)


# --- 6 and 7. a key answers only for its own request -----------------------------------------


async def test_a_refused_reversal_under_a_key_used_for_another_request_is_key_reused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    key = f"key-{uuid.uuid4()}"
    await api.accepted(api.points("issue", partner, member, 10, idempotency_key=key))
    entry = await api.issued(partner, member, 3)
    await api.accepted(api.reversal(partner, entry))
    again = api.reversal(partner, entry, idempotency_key=key)
    await api.refused(again, 422, "idempotency_key_reused", receipt=True)


async def test_a_reversal_of_an_unknown_entry_under_a_used_key_replays_nothing(
    api: SignedApi, partner: Partner, member: str
) -> None:
    key = f"key-{uuid.uuid4()}"
    await api.accepted(api.points("issue", partner, member, 10, idempotency_key=key))
    unknown = {"entry_id": str(uuid.uuid4()), "kind": "issue"}
    await api.refused(
        api.reversal(partner, unknown, idempotency_key=key), 404, "not_found", receipt=True
    )


async def test_a_retried_reversal_that_took_the_last_points_still_replays(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 3)
    key = f"key-{uuid.uuid4()}"
    first = await api.accepted(api.reversal(partner, entry, idempotency_key=key))
    response = await api.send(api.reversal(partner, entry, idempotency_key=key))
    assert response.status_code == 201, response.text
    assert response.headers["idempotent-replayed"] == "true"
    assert response.json()["entry_id"] == first["entry_id"]


async def test_an_enrolment_key_reused_for_an_issue_is_key_reused_at_once(
    api: SignedApi, partner: Partner, member: str
) -> None:
    key = f"key-{uuid.uuid4()}"
    await api.enrolled(partner, idempotency_key=key)
    issue = api.points("issue", partner, member, 5, idempotency_key=key)
    await api.refused(issue, 422, "idempotency_key_reused", receipt=True)


async def test_an_issue_key_reused_for_an_enrolment_is_key_reused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    key = f"key-{uuid.uuid4()}"
    await api.accepted(api.points("issue", partner, member, 5, idempotency_key=key))
    enrolment = api.request(
        "POST", "/v1/members", partner, body={}, purpose="enrolment", idempotency_key=key
    )
    await api.refused(enrolment, 422, "idempotency_key_reused", receipt=True)


# --- 9. the target URI as sent; ids that can be read back ------------------------------------


async def test_a_signature_over_a_target_uri_with_an_empty_query_verifies(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = api.points("issue", partner, member, 5).content
    request = partner_request(
        api.base_url, "POST", "/v1/transactions/issue?", partner.key, body=body, purpose="accrual"
    )
    assert str(request.url).endswith("/issue?")
    await api.accepted(request)


async def test_an_empty_query_is_not_a_licence_to_add_one(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    await api.refused(altered(request, params={"x": "1"}), 401, "invalid_signature")


@pytest.mark.parametrize("member_id", ["a/b", "a?b", "a#b", "a%2Fb", "a\\b"])
async def test_a_member_id_that_cannot_be_a_path_segment_is_refused_at_enrolment(
    api: SignedApi, partner: Partner, member_id: str
) -> None:
    enrolment = api.request(
        "POST", "/v1/members", partner, body={"member_id": member_id}, purpose="enrolment"
    )
    await api.refused(enrolment, 400, "invalid_request", receipt=True)


async def test_an_issue_to_a_member_id_with_a_slash_is_invalid_request(
    api: SignedApi, partner: Partner
) -> None:
    await api.refused(api.points("issue", partner, "a/b", 5), 400, "invalid_request", receipt=True)


async def test_metrics_need_the_operator_token(
    api: SignedApi, operator: dict[str, str], database: Database
) -> None:
    assert_problem(await api.client.get("/metrics"), 401, "invalid_token")
    auditor = await access.create_token(database, Role.AUDITOR, utc_now() + timedelta(hours=1))
    forbidden = await api.client.get(
        "/metrics", headers={"Authorization": f"Bearer {auditor.secret}"}
    )
    assert_problem(forbidden, 403, "forbidden")
    response = await api.client.get("/metrics", headers=operator)
    assert response.status_code == 200
    assert "clearhouse_" in response.text
