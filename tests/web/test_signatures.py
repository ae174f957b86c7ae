"""The signed partner API under attack (SPEC 4.1-4.4, issue 3 "Tests").

Requests are signed by the independent PyPI package ``http_message_signatures``
(``tests.web.signing``); every refused request goes through ``SignedApi.refused``, which
asserts the exact problem and that the ledger is exactly as it was before the request.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from clearhouse.crypto.ed25519 import parse_public_key, verify
from clearhouse.crypto.http_signatures import (
    HeaderFields,
    InvalidSignature,
    RequestMessage,
    parse_dictionary,
    verify_signature,
)
from clearhouse.services import access
from clearhouse_client import AsyncPartnerClient
from tests.web.harness import (
    OCCURRED_AT,
    Partner,
    SignedApi,
    ledger_snapshot,
    utc_now,
)
from tests.web.signing import (
    PartnerKey,
    add_signature,
    altered,
    md5_digest,
    new_nonce,
    sha256_digest,
    sign_request,
    signature_labels,
    verify_receipt,
    verify_request,
)


@pytest.fixture
async def member(api: SignedApi) -> str:
    return await api.member(balance=100)


def _issue_body(member_id: str, points: Any = 10, **extra: Any) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "points": points,
        "occurred_at": OCCURRED_AT,
        "reference": "receipt 4711",
        **extra,
    }


# --- the snapshot that every refusal is checked against ------------------------------------


async def test_the_ledger_snapshot_sees_every_kind_of_write(
    api: SignedApi, partner: Partner, member: str
) -> None:
    before = await ledger_snapshot(api.database)
    await api.accepted(
        api.points("issue", partner, member, 7, body=_issue_body(member, 7, metadata={"a": 1}))
    )
    after = await ledger_snapshot(api.database)
    assert after.entries == before.entries + 1
    assert after.postings == before.postings + 2
    assert after.account_sums != before.account_sums
    assert after.member_balances[member] == before.member_balances[member] + 7
    assert len(after.idempotency_keys - before.idempotency_keys) == 1
    assert after.entry_metadata == before.entry_metadata + 1


# --- interoperability ----------------------------------------------------------------------


async def test_a_request_signed_by_http_message_signatures_is_accepted(
    api: SignedApi, partner: Partner, member: str
) -> None:
    """The package used as a partner would, with its defaults: it adds the Content-Digest
    of the body and covers it, and labels the signature itself."""
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={partner.key.key_id: partner.key.private_key}
        ),
    )
    body = msgspec.json.encode(_issue_body(member, 25))
    request = httpx.Request(
        "POST",
        f"{api.base_url}/v1/transactions/issue",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
            "Data-Purpose": "accrual",
        },
    )
    message = RequestMessage(
        request.method, str(request.url), HeaderFields(request.headers.multi_items())
    )
    signer.sign(
        message,
        key_id=partner.key.key_id,
        created=utc_now(),
        nonce=new_nonce(),
        covered_component_ids=(
            "@method",
            "@target-uri",
            "content-type",
            "idempotency-key",
            "data-purpose",
        ),
        body=body,
    )
    request.headers = httpx.Headers(message.headers.items())
    assert request.headers["content-digest"] == sha256_digest(body)
    (label,) = signature_labels(request)

    response = await api.send(request)

    assert response.status_code == 201, response.text
    verify_receipt(response, api.coalition_keys, request_label=label)
    entry = response.json()
    assert (entry["kind"], entry["partner_id"], entry["member_id"]) == (
        "issue",
        partner.partner_id,
        member,
    )
    assert (entry["points"], entry["member_balance"]) == (25, 125)
    read = RequestMessage(
        "GET",
        f"{api.base_url}/v1/transactions/{entry['entry_id']}",
        HeaderFields([("Data-Purpose", "settlement")]),
    )
    signer.sign(
        read,
        key_id=partner.key.key_id,
        created=utc_now(),
        nonce=new_nonce(),
        covered_component_ids=("@method", "@target-uri", "data-purpose"),
    )
    fetched = await api.send(httpx.Request("GET", read.url, headers=read.headers.items()))
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == {**entry, "member_balance": None}


async def test_the_test_signer_signs_what_the_package_verifies(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 25)
    verify_request(request, partner.key.key_id, partner.key.public_raw)
    await api.accepted(request)


async def test_an_entry_keeps_the_signature_of_the_request_that_created_it(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    entry = await api.accepted(request)
    async with api.database.driver_connection() as connection:
        row = await connection.fetchrow(
            "SELECT signature_input, signature, content_digest FROM entries WHERE entry_id = $1",
            uuid.UUID(entry["entry_id"]),
        )
    assert row["signature_input"] == request.headers["signature-input"]
    assert row["signature"] == request.headers["signature"]
    assert row["content_digest"] == sha256_digest(request.content)


async def test_alg_and_expires_are_optional_parameters(
    api: SignedApi, partner: Partner, member: str
) -> None:
    await api.accepted(api.points("issue", partner, member, 1, include_alg=False))
    await api.accepted(
        api.points("issue", partner, member, 1, expires=utc_now() + timedelta(minutes=1))
    )


async def test_the_partner_client_round_trip_checks_every_receipt(
    api: SignedApi, partner: Partner, member: str
) -> None:
    async with AsyncPartnerClient(
        api.base_url,
        key_id=partner.key.key_id,
        private_key=partner.key.private_key,
        transport=httpx.ASGITransport(app=api.app),
    ) as client:
        issued = await client.issue(member, 40, reference="receipt 1")
        redeemed = await client.redeem(member, 15, reference="receipt 2")
        reversed_ = await client.reverse(issued, reason="returned", points=5)
        assert (issued.member_balance, redeemed.member_balance) == (140, 125)
        assert reversed_.reversal_of == issued.entry_id
        assert reversed_.member_balance == 120
        assert await client.entry(issued.entry_id) == msgspec.structs.replace(
            issued, member_balance=None
        )
        written = [issued, redeemed, reversed_]
        listed = [
            e.entry_id
            for period in sorted({e.period for e in written})  # one, unless a month just ended
            async for e in client.entries(period, page_size=2)
        ]
        assert listed == [e.entry_id for e in written]


# RFC 9421 Appendix B.1.4 (test-key-ed25519) and B.2.6, copied from the RFC text; the RFC
# wraps long lines per RFC 8792, they are unwrapped here.
RFC9421_B14_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""
RFC9421_B14_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
RFC9421_B26_SIGNATURE_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)
RFC9421_B26_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC9421_B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1"
    "u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)


def _rfc_test_request(date: str = "Tue, 20 Apr 2021 02:07:55 GMT") -> RequestMessage:
    """The test-request message of RFC 9421 B.2, with the B.2.6 signature."""
    return RequestMessage(
        "POST",
        "https://example.com/foo?param=Value&Pet=dog",
        HeaderFields(
            [
                ("Host", "example.com"),
                ("Date", date),
                ("Content-Type", "application/json"),
                ("Content-Length", "18"),
                ("Signature-Input", RFC9421_B26_SIGNATURE_INPUT),
                ("Signature", RFC9421_B26_SIGNATURE),
            ]
        ),
    )


def _rfc_signature_bytes() -> bytes:
    return base64.b64decode(RFC9421_B26_SIGNATURE.removeprefix("sig-b26=").strip(":"))


def test_the_rfc_9421_b26_values_are_copied_right() -> None:
    public_key = parse_public_key(RFC9421_B14_PUBLIC_KEY)
    base = RFC9421_B26_SIGNATURE_BASE.encode()
    assert verify(public_key, _rfc_signature_bytes(), base)
    private_key = load_pem_private_key(RFC9421_B14_PRIVATE_KEY.encode(), password=None)
    assert isinstance(private_key, Ed25519PrivateKey)
    assert private_key.sign(base) == _rfc_signature_bytes()  # Ed25519 is deterministic


def test_the_rfc_9421_b26_example_verifies_with_the_project_code() -> None:
    covered = verify_signature(
        _rfc_test_request(), "test-key-ed25519", parse_public_key(RFC9421_B14_PUBLIC_KEY)
    )
    base = "\n".join(f"{component}: {value}" for component, value in covered.items())
    assert base == RFC9421_B26_SIGNATURE_BASE


def test_the_rfc_9421_b26_example_fails_when_a_covered_field_changes() -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(
            _rfc_test_request(date="Tue, 20 Apr 2021 02:07:56 GMT"),
            "test-key-ed25519",
            parse_public_key(RFC9421_B14_PUBLIC_KEY),
        )


# --- no signature, the wrong key -----------------------------------------------------------


@pytest.mark.parametrize(
    "dropped",
    [("signature", "signature-input"), ("signature",), ("signature-input",)],
    ids=["both", "signature", "signature-input"],
)
async def test_a_request_without_a_signature_is_missing_signature(
    api: SignedApi, partner: Partner, member: str, dropped: tuple[str, ...]
) -> None:
    request = altered(api.points("issue", partner, member, 5), drop_headers=dropped)
    await api.refused(request, 401, "missing_signature")


async def test_a_read_without_a_signature_is_missing_signature(api: SignedApi) -> None:
    read = httpx.Request(
        "GET",
        f"{api.base_url}/v1/transactions/{uuid.uuid4()}",
        headers={"Data-Purpose": "settlement"},
    )
    await api.refused(read, 401, "missing_signature")


async def test_a_signature_by_an_unknown_key_is_unknown_key(
    api: SignedApi, partner: Partner, member: str
) -> None:
    stranger = PartnerKey.generate(f"{partner.partner_id}-key-unregistered")
    await api.refused(api.points("issue", stranger, member, 5), 401, "unknown_key")


async def test_a_revoked_key_is_refused_on_the_very_next_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    second = PartnerKey.generate(f"{partner.partner_id}-key-2")
    await access.add_key(
        api.database, partner.partner_id, second.public_base64, key_id=second.key_id
    )
    await api.accepted(api.points("issue", partner, member, 5))
    await api.accepted(api.points("issue", second, member, 5))
    await access.revoke_key(api.database, partner.key.key_id)
    await api.refused(api.points("issue", partner, member, 5), 401, "unknown_key")
    await api.accepted(api.points("issue", second, member, 5))  # rotation: the other key lives


async def test_a_key_whose_stored_bytes_changed_signs_nothing_more_in_a_process_that_read_it(
    api: SignedApi, partner: Partner, member: str
) -> None:
    # The process keeps the key's bytes after the first request; the database still has the
    # last word on every request, so a key replaced under the same id stops the old one at once.
    await api.accepted(api.points("issue", partner, member, 5))
    replacement = PartnerKey.generate(partner.key.key_id)
    async with api.database.driver_connection() as connection:
        await connection.execute(
            "UPDATE partner_keys SET public_key = $2 WHERE key_id = $1",
            partner.key.key_id,
            replacement.public_raw,
        )
    await api.refused(api.points("issue", partner, member, 5), 401, "unknown_key")
    renewed = Partner(partner.partner_id, replacement)
    await api.accepted(api.points("issue", renewed, member, 5))  # read again, it verifies


async def test_a_key_revoked_between_reading_and_spending_the_nonce_is_unknown_key(
    api: SignedApi, partner: Partner, member: str
) -> None:
    # A revocation that commits after the process read the key still refuses the request.
    await api.accepted(api.points("issue", partner, member, 5))
    async with api.database.driver_connection() as connection:
        await connection.execute(
            "UPDATE partner_keys SET revoked_at = clock_timestamp() WHERE key_id = $1",
            partner.key.key_id,
        )
    await api.refused(api.points("issue", partner, member, 5), 401, "unknown_key")


async def test_an_expired_key_is_unknown_key(api: SignedApi, member: str) -> None:
    now = utc_now()
    expired = await api.partner(
        not_before=now - timedelta(days=30), not_after=now - timedelta(minutes=1)
    )
    await api.refused(api.points("issue", expired, member, 5), 401, "unknown_key")


async def test_a_key_not_valid_yet_is_unknown_key(api: SignedApi, member: str) -> None:
    future = await api.partner(not_before=utc_now() + timedelta(hours=1))
    await api.refused(api.points("issue", future, member, 5), 401, "unknown_key")


async def test_a_key_within_its_validity_is_accepted(api: SignedApi, member: str) -> None:
    now = utc_now()
    valid = await api.partner(
        not_before=now - timedelta(days=1), not_after=now + timedelta(minutes=5)
    )
    await api.accepted(api.points("issue", valid, member, 5))


async def test_another_partners_private_key_under_this_partners_keyid_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str
) -> None:
    other = await api.partner("other")
    request = api.points("issue", partner, member, 5, private_key=other.key.private_key)
    await api.refused(request, 401, "invalid_signature")


async def test_another_partners_key_cannot_read_this_partners_entry(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 5)
    other = await api.partner("other")
    path = f"/v1/transactions/{entry['entry_id']}"
    theirs = await api.refused(api.request("GET", path, other), 404, "not_found", receipt=True)
    unknown_id = str(uuid.uuid4())
    nobodys = await api.refused(
        api.request("GET", f"/v1/transactions/{unknown_id}", other), 404, "not_found"
    )
    assert theirs["detail"].replace(entry["entry_id"], "<id>") == nobodys["detail"].replace(
        unknown_id, "<id>"
    )
    assert (await api.accepted(api.request("GET", path, partner), 200)) == {
        **entry,
        "member_balance": None,
    }


async def test_another_partners_key_cannot_reverse_this_partners_entry(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 5)
    other = await api.partner("other")
    await api.refused(api.reversal(other, entry), 404, "not_found", receipt=True)
    await api.refused(api.reversal(other, entry, 1), 404, "not_found", receipt=True)


async def test_another_partners_entries_are_not_listed(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 5)
    other = await api.partner("other")
    mine = await api.issued(other, member, 6)
    for period in {entry["period"], mine["period"]}:
        params = {"period": period, "limit": 1000}
        listing = api.request("GET", "/v1/transactions", other, params=params)
        page = await api.accepted(listing, 200)
        expected = [mine["entry_id"]] if period == mine["period"] else []
        assert [e["entry_id"] for e in page["entries"]] == expected


# --- replay and freshness ------------------------------------------------------------------


async def test_a_replayed_request_is_refused(api: SignedApi, partner: Partner, member: str) -> None:
    request = api.points("issue", partner, member, 5)
    await api.accepted(request)
    await api.refused(altered(request), 401, "replayed_request")


async def test_a_new_request_with_a_used_nonce_is_refused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    nonce = new_nonce()
    await api.accepted(api.points("issue", partner, member, 5, nonce=nonce))
    await api.refused(api.points("issue", partner, member, 6, nonce=nonce), 401, "replayed_request")
    read = api.request("GET", f"/v1/transactions/{uuid.uuid4()}", partner, nonce=nonce)
    await api.refused(read, 401, "replayed_request")


async def test_a_nonce_is_per_key(api: SignedApi, partner: Partner, member: str) -> None:
    other = await api.partner("other")
    nonce = new_nonce()
    await api.accepted(api.points("issue", partner, member, 5, nonce=nonce))
    await api.accepted(api.points("issue", other, member, 5, nonce=nonce))


@pytest.mark.parametrize("direction", [-1, 1], ids=["too-old", "too-far-in-the-future"])
async def test_created_outside_the_window_is_stale(
    api: SignedApi, partner: Partner, member: str, direction: int
) -> None:
    window = timedelta(seconds=api.settings.signature_window_s)
    created = utc_now() + direction * (window + timedelta(seconds=30))
    request = api.points("issue", partner, member, 5, created=created)
    await api.refused(request, 401, "stale_signature")


@pytest.mark.parametrize("direction", [-1, 1], ids=["old", "ahead"])
async def test_created_inside_the_window_is_accepted(
    api: SignedApi, partner: Partner, member: str, direction: int
) -> None:
    window = timedelta(seconds=api.settings.signature_window_s)
    created = utc_now() + direction * (window - timedelta(seconds=30))
    await api.accepted(api.points("issue", partner, member, 5, created=created))


@pytest.mark.parametrize(
    "created", [999_999_999_999_999, -999_999_999_999_999], ids=["year-31-million", "before-1"]
)
async def test_a_created_beyond_the_calendar_is_stale_not_a_crash(
    api: SignedApi, partner: Partner, member: str, created: int
) -> None:
    # The parameter is appended once more; a Structured Field parser keeps the last value.
    request = api.points("issue", partner, member, 5, extra_params={"created": created})
    await api.refused(request, 401, "stale_signature")


async def test_expires_in_the_past_is_stale(api: SignedApi, partner: Partner, member: str) -> None:
    expired = utc_now() - timedelta(seconds=2)
    await api.refused(
        api.points("issue", partner, member, 5, expires=expired), 401, "stale_signature"
    )


# --- the body and its digest ---------------------------------------------------------------


async def test_a_body_changed_after_signing_is_digest_mismatch(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    tampered = altered(request, content=request.content.replace(b'"points":5', b'"points":500'))
    assert tampered.content != request.content
    await api.refused(tampered, 401, "digest_mismatch")


async def test_an_absent_content_digest_is_digest_mismatch(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = altered(api.points("issue", partner, member, 5), drop_headers=["content-digest"])
    await api.refused(request, 401, "digest_mismatch")


@pytest.mark.parametrize("digest", ["other-body", "md5-only", "malformed"])
async def test_a_validly_signed_wrong_content_digest_is_digest_mismatch(
    api: SignedApi, partner: Partner, member: str, digest: str
) -> None:
    body = httpx.Request("POST", "/", json=_issue_body(member, 5)).content
    value = {
        "other-body": sha256_digest(body + b" "),
        "md5-only": md5_digest(body),
        "malformed": "sha-256=not-a-byte-sequence",
    }[digest]
    request = api.points("issue", partner, member, 5, body=body, content_digest=value)
    await api.refused(request, 401, "digest_mismatch")


async def test_a_signature_that_does_not_cover_the_digest_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5, omit=["content-digest"])
    await api.refused(request, 401, "invalid_signature")


# --- covered components --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Idempotency-Key", "another-key"),
        ("Data-Purpose", "redemption"),
        ("Content-Type", "application/json; charset=utf-8"),
    ],
)
async def test_a_covered_header_changed_after_signing_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str, header: str, value: str
) -> None:
    request = altered(api.points("issue", partner, member, 5), set_headers={header: value})
    await api.refused(request, 401, "invalid_signature")


@pytest.mark.parametrize(
    "component",
    ["@method", "@target-uri", "content-type", "content-digest", "idempotency-key", "data-purpose"],
)
async def test_a_write_that_leaves_out_a_required_component_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str, component: str
) -> None:
    request = api.points("issue", partner, member, 5, omit=[component])
    await api.refused(request, 401, "invalid_signature")


@pytest.mark.parametrize("component", ["@method", "@target-uri", "data-purpose"])
async def test_a_read_that_leaves_out_a_required_component_is_invalid_signature(
    api: SignedApi, partner: Partner, component: str
) -> None:
    read = api.request("GET", f"/v1/transactions/{uuid.uuid4()}", partner, omit=[component])
    await api.refused(read, 401, "invalid_signature")


async def test_a_reversal_must_cover_its_data_purpose(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 5)
    await api.refused(api.reversal(partner, entry, omit=["data-purpose"]), 401, "invalid_signature")


async def test_a_changed_path_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str
) -> None:
    first, second = await api.issued(partner, member, 5), await api.issued(partner, member, 6)
    read = api.request("GET", f"/v1/transactions/{first['entry_id']}", partner)
    moved = altered(read, path=f"/v1/transactions/{second['entry_id']}")
    await api.refused(moved, 401, "invalid_signature")
    reversal = api.reversal(partner, first, 1)
    redirected = altered(reversal, path=f"/v1/transactions/{second['entry_id']}/reversals")
    await api.refused(redirected, 401, "invalid_signature")
    await api.accepted(altered(reversal))


async def test_a_changed_query_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 5)
    params = {"period": entry["period"], "limit": 5}
    listing = api.request("GET", "/v1/transactions", partner, params=params)
    await api.refused(altered(listing, params={**params, "limit": 6}), 401, "invalid_signature")
    await api.refused(altered(listing, params={**params, "cursor": "x"}), 401, "invalid_signature")
    await api.accepted(altered(listing), 200)


async def test_host_and_forwarded_headers_do_not_matter(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    behind_a_proxy = altered(
        request,
        host="10.1.2.3",
        set_headers={
            "Host": "10.1.2.3:8080",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Port": "8443",
            "Forwarded": "host=evil.example;proto=http",
        },
    )
    await api.accepted(behind_a_proxy)


async def test_the_target_uri_is_the_public_one_not_the_host_the_request_reached(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5)
    lines = [
        (name, value)
        for name, value in request.headers.multi_items()
        if name.lower() not in {"host", "signature", "signature-input"}
    ]
    reached = "http://10.1.2.3:8080/v1/transactions/issue"
    signed_for_reached_url = sign_request(
        httpx.Request("POST", reached, headers=lines, content=request.content), partner.key
    )
    await api.refused(signed_for_reached_url, 401, "invalid_signature")


# --- hostile input refused before any work -------------------------------------------------


def _nonce_of(request: httpx.Request) -> str:
    (_, params), *_ = parse_dictionary(request.headers["signature-input"]).values()
    return str(params["nonce"])


async def _nonce_is_still_unused(
    api: SignedApi, partner: Partner, member: str, refused: httpx.Request
) -> None:
    """Refused before any work (SPEC 4.1): not even its nonce was spent."""
    await api.accepted(api.points("issue", partner, member, 1, nonce=_nonce_of(refused)))


@pytest.mark.parametrize("header", ["Content-Type", "Idempotency-Key", "Data-Purpose"])
@pytest.mark.parametrize("repeat", ["same", "different"])
async def test_a_repeated_single_header_line_is_invalid_request(
    api: SignedApi, partner: Partner, member: str, header: str, repeat: str
) -> None:
    request = api.points("issue", partner, member, 5)
    value = request.headers[header] if repeat == "same" else request.headers[header] + "x"
    await api.refused(altered(request, add_lines=[(header, value)]), 400, "invalid_request")
    await _nonce_is_still_unused(api, partner, member, request)


@pytest.mark.parametrize("header", ["Idempotency-Key", "Data-Purpose"])
async def test_non_ascii_in_a_covered_value_is_invalid_request(
    api: SignedApi, partner: Partner, member: str, header: str
) -> None:
    request = api.points("issue", partner, member, 5)
    lines = [
        (name.encode(), value.encode())
        for name, value in request.headers.multi_items()
        if name.lower() != header.lower()
    ]
    lines.append((header.encode(), request.headers[header].encode() + b"\xe9"))
    hostile = httpx.Request("POST", request.url, headers=lines, content=request.content)
    await api.refused(hostile, 400, "invalid_request")


def _mebibyte_body(member_id: str) -> bytes:
    padding = "x" * (1024 * 1024)
    return httpx.Request(
        "POST", "/", json=_issue_body(member_id, 5, metadata={"pad": padding})
    ).content


async def test_a_one_mebibyte_body_is_payload_too_large(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = _mebibyte_body(member)
    request = api.points("issue", partner, member, 5, body=body)
    assert int(request.headers["content-length"]) == len(body) > api.settings.body_max_bytes
    await api.refused(request, 413, "payload_too_large")
    await _nonce_is_still_unused(api, partner, member, request)


def _streamed(request: httpx.Request, chunk: int = 64 * 1024) -> httpx.Request:
    """The same request with its body streamed in chunks and no Content-Length."""
    body = request.content

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    lines = [(n, v) for n, v in request.headers.multi_items() if n.lower() != "content-length"]
    return httpx.Request(request.method, request.url, headers=lines, content=chunks())


async def test_a_one_mebibyte_body_without_content_length_is_payload_too_large(
    api: SignedApi, partner: Partner, member: str
) -> None:
    streamed = _streamed(api.points("issue", partner, member, 5, body=_mebibyte_body(member)))
    assert "content-length" not in streamed.headers
    await api.refused(streamed, 413, "payload_too_large")
    await _nonce_is_still_unused(api, partner, member, streamed)
    small = _streamed(api.points("issue", partner, member, 5), chunk=7)
    assert "content-length" not in small.headers
    await api.accepted(small)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_is_unsupported_media_type(
    api: SignedApi, partner: Partner, member: str, content_type: str
) -> None:
    request = api.points("issue", partner, member, 5, content_type=content_type)
    await api.refused(request, 415, "unsupported_media_type")
    await _nonce_is_still_unused(api, partner, member, request)


@pytest.mark.parametrize(
    "body",
    [b'{"member_id": "m-1", "points": 5,', b"[1, 2, 3]", b"", b"null"],
    ids=["truncated", "array", "empty", "null"],
)
async def test_a_malformed_body_is_invalid_request(
    api: SignedApi, partner: Partner, member: str, body: bytes
) -> None:
    await api.refused(
        api.points("issue", partner, member, 5, body=body), 400, "invalid_request", receipt=True
    )


async def test_an_unknown_field_is_invalid_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = _issue_body(member, 5, bonus_points=100)
    await api.refused(
        api.points("issue", partner, member, 5, body=body), 400, "invalid_request", receipt=True
    )


BAD_POINTS = [-5, 0, 10**12, 2**70, 1.5, "5", True]


@pytest.mark.parametrize("kind", ["issue", "redeem"])
@pytest.mark.parametrize("points", BAD_POINTS, ids=repr)
async def test_bad_points_are_invalid_request(
    api: SignedApi, partner: Partner, member: str, kind: str, points: object
) -> None:
    await api.refused(
        api.points(kind, partner, member, points), 400, "invalid_request", receipt=True
    )


@pytest.mark.parametrize("points", BAD_POINTS, ids=repr)
async def test_bad_reversal_points_are_invalid_request(
    api: SignedApi, partner: Partner, member: str, points: Any
) -> None:
    entry = await api.issued(partner, member, 50)
    request = api.reversal(partner, entry, body={"reason": "returned goods", "points": points})
    await api.refused(request, 400, "invalid_request", receipt=True)


async def test_a_wrong_data_purpose_is_purpose_not_permitted(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 5)
    wrong = [
        api.points("issue", partner, member, 5, purpose="redemption"),
        api.points("redeem", partner, member, 5, purpose="accrual"),
        api.reversal(partner, entry, purpose="redemption"),
        api.request("GET", f"/v1/transactions/{entry['entry_id']}", partner, purpose="accrual"),
        api.request(
            "GET", "/v1/transactions", partner, purpose="marketing", params={"period": "2026-11"}
        ),
    ]
    for request in wrong:
        await api.refused(request, 403, "purpose_not_permitted", receipt=True)


@pytest.mark.parametrize(
    "parameters",
    [{"tag": "pos-terminal"}, {"extra_params": {"foo": "bar"}}, {"extra_params": {"n": 1}}],
    ids=["tag", "string", "integer"],
)
async def test_an_unknown_signature_parameter_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str, parameters: dict[str, Any]
) -> None:
    request = api.points("issue", partner, member, 5, **parameters)
    await api.refused(request, 401, "invalid_signature")


@pytest.mark.parametrize(
    "nonce",
    [None, "n" * 15, "n" * 129],
    ids=["absent", "15-chars", "129-chars"],
)
async def test_a_nonce_outside_the_profile_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str, nonce: str | None
) -> None:
    request = api.points("issue", partner, member, 5, nonce=nonce)
    await api.refused(request, 401, "invalid_signature")


@pytest.mark.parametrize("length", [16, 128])
async def test_a_nonce_of_16_to_128_chars_is_accepted(
    api: SignedApi, partner: Partner, member: str, length: int
) -> None:
    nonce = secrets.token_hex(64)[:length]
    await api.accepted(api.points("issue", partner, member, 5, nonce=nonce))


async def test_parameters_appended_by_the_test_signer_verify_when_the_profile_allows_them(
    api: SignedApi, partner: Partner, member: str
) -> None:
    """The control for the tests above: their signatures are sound, only the parameter is not."""
    expires = int((utc_now() + timedelta(minutes=1)).timestamp())
    await api.accepted(api.points("issue", partner, member, 5, extra_params={"expires": expires}))
    await api.accepted(
        api.points("issue", partner, member, 5, include_alg=False, extra_params={"alg": "ed25519"})
    )


async def test_an_alg_other_than_ed25519_is_invalid_signature(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points(
        "issue", partner, member, 5, include_alg=False, extra_params={"alg": "rsa-pss-sha512"}
    )
    await api.refused(request, 401, "invalid_signature")


# --- several signatures --------------------------------------------------------------------


async def test_several_signatures_none_valid_are_refused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    forger = Ed25519PrivateKey.generate()
    request = api.points("issue", partner, member, 5, private_key=forger)
    add_signature(request, partner.key, label="sig2", private_key=Ed25519PrivateKey.generate())
    assert signature_labels(request) == ["sig1", "sig2"]
    await api.refused(request, 401, "invalid_signature")


@pytest.mark.parametrize("valid_label", ["sig1", "sig2"])
async def test_several_signatures_one_valid_are_accepted(
    api: SignedApi, partner: Partner, member: str, valid_label: str
) -> None:
    stranger = PartnerKey.generate(f"{partner.partner_id}-key-unregistered")
    if valid_label == "sig1":
        request = api.points("issue", partner, member, 5)
        add_signature(request, stranger, label="sig2")
    else:
        request = api.points("issue", stranger, member, 5)
        add_signature(request, partner.key, label="sig2")
    response = await api.send(request)
    assert response.status_code == 201, response.text
    verify_receipt(response, api.coalition_keys, request_label=valid_label)


async def test_the_receipt_does_not_verify_for_another_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    response = await api.send(api.points("issue", partner, member, 5))
    assert response.status_code == 201
    swapped = httpx.Response(
        response.status_code,
        headers=response.headers,
        content=response.content,
        request=api.points("issue", partner, member, 5),
    )
    with pytest.raises(InvalidSignature):
        verify_receipt(swapped, api.coalition_keys)


# --- idempotency and reversals -------------------------------------------------------------


async def test_an_idempotency_key_reused_with_another_body_is_refused(
    api: SignedApi, partner: Partner, member: str
) -> None:
    key = f"order-{uuid.uuid4()}"
    await api.accepted(api.points("issue", partner, member, 10, idempotency_key=key))
    other = api.points("issue", partner, member, 11, idempotency_key=key)
    await api.refused(other, 422, "idempotency_key_reused", receipt=True)
    elsewhere = api.points("redeem", partner, member, 10, idempotency_key=key)
    await api.refused(elsewhere, 422, "idempotency_key_reused", receipt=True)


async def test_an_idempotency_key_replayed_with_the_same_body_returns_the_original(
    api: SignedApi, partner: Partner, member: str
) -> None:
    key = f"order-{uuid.uuid4()}"
    first = await api.send(api.points("issue", partner, member, 10, idempotency_key=key))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    before = await ledger_snapshot(api.database)
    again = api.points("issue", partner, member, 10, idempotency_key=key)
    assert again.headers["signature"] != first.request.headers["signature"]
    replay = await api.send(again)
    assert await ledger_snapshot(api.database) == before
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    verify_receipt(replay, api.coalition_keys)


async def test_a_reversal_of_more_points_than_remain_is_insufficient_points(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 30)
    await api.accepted(api.reversal(partner, entry, 20))
    await api.refused(api.reversal(partner, entry, 11), 409, "insufficient_points", receipt=True)
    last = await api.accepted(api.reversal(partner, entry, 10))
    assert last["reversal_of"] == entry["entry_id"]
    await api.refused(api.reversal(partner, entry), 409, "insufficient_points", receipt=True)
    await api.refused(api.reversal(partner, entry, 1), 409, "insufficient_points", receipt=True)


async def test_a_redeem_of_more_points_than_the_member_holds_is_insufficient_points(
    api: SignedApi, partner: Partner, member: str
) -> None:
    await api.refused(
        api.points("redeem", partner, member, 101), 409, "insufficient_points", receipt=True
    )
    assert (await api.accepted(api.points("redeem", partner, member, 100)))["member_balance"] == 0


async def test_a_reversal_of_an_unknown_entry_is_not_found(
    api: SignedApi, partner: Partner
) -> None:
    ghost = {"entry_id": str(uuid.uuid4()), "kind": "issue"}
    await api.refused(api.reversal(partner, ghost), 404, "not_found", receipt=True)


async def test_an_unknown_member_is_unknown_member(api: SignedApi, partner: Partner) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:10]}"
    await api.refused(api.points("issue", partner, ghost, 5), 422, "unknown_member", receipt=True)


async def test_an_idempotency_key_over_255_characters_is_invalid_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    too_long = api.points("issue", partner, member, 5, idempotency_key="k" * 256)
    await api.refused(too_long, 400, "invalid_request", receipt=True)
    await api.accepted(api.points("issue", partner, member, 5, idempotency_key="k" * 255))


async def test_a_reversal_replayed_with_its_key_returns_the_original_when_nothing_remains(
    api: SignedApi, partner: Partner, member: str
) -> None:
    entry = await api.issued(partner, member, 10)
    key = f"refund-{uuid.uuid4()}"
    first = await api.send(api.reversal(partner, entry, idempotency_key=key))
    assert first.status_code == 201
    assert first.json()["points"] == 10
    before = await ledger_snapshot(api.database)
    replay = await api.send(api.reversal(partner, entry, idempotency_key=key))
    assert await ledger_snapshot(api.database) == before
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content


async def test_a_reversal_of_a_redeem_gives_the_points_back(
    api: SignedApi, partner: Partner, member: str
) -> None:
    redeemed = await api.accepted(api.points("redeem", partner, member, 30))
    assert redeemed["member_balance"] == 70
    reversal = await api.accepted(api.reversal(partner, redeemed, 12))
    assert (reversal["kind"], reversal["points"], reversal["member_balance"]) == (
        "reversal",
        12,
        82,
    )


@pytest.mark.parametrize(
    "params",
    [
        {"period": "2026-13"},
        {"period": "2026-00"},
        {"period": "26-11"},
        {"period": "0000-01"},
        {"period": "9999-12"},
        {"period": "2026-11", "cursor": "garbage"},
        {"period": "2026-11", "limit": 0},
        {"period": "2026-11", "limit": 1001},
    ],
    ids=[
        "month-13",
        "month-0",
        "short-year",
        "year-0",
        "year-9999",
        "cursor",
        "limit-0",
        "limit-1001",
    ],
)
async def test_a_bad_listing_query_is_invalid_request(
    api: SignedApi, partner: Partner, params: dict[str, Any]
) -> None:
    listing = api.request("GET", "/v1/transactions", partner, params=params)
    await api.refused(listing, 400, "invalid_request", receipt=True)


async def test_metadata_the_database_cannot_store_is_invalid_request(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = _issue_body(member, 5, metadata={"note": "nul \u0000 inside"})
    request = api.points("issue", partner, member, 5, body=body)
    assert b"\\u0000" in request.content
    await api.refused(request, 400, "invalid_request", receipt=True)
