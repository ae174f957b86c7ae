"""Operator endpoints with bearer tokens, the sandbox clock and the coalition's public keys."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import InvalidSignature

from clearhouse.crypto.ed25519 import load_private_key, public_bytes
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.database import Database
from clearhouse.storage import access as access_store
from tests.services.builders import contract_toml, unique
from tests.web.harness import SignedApi, assert_problem, signed_api, utc_now
from tests.web.signing import PartnerKey, key_lines, verify_receipt

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
"""A master key for coalitions outside sandbox mode in these tests."""


async def _token(database: Database, role: Role) -> str:
    return (await access.create_token(database, role, utc_now() + timedelta(hours=1))).secret


async def _partner_id(api: SignedApi, operator: dict[str, str]) -> str:
    """A partner registered by the operator, with a contract version in force."""
    partner_id = unique("shop")
    response = await api.client.post(
        "/v1/admin/partners",
        json={"partner_id": partner_id, "legal_name": "Shop GmbH"},
        headers=operator,
    )
    assert response.status_code == 201, response.text
    contract = {"name": f"{partner_id}.v1.toml", "toml": contract_toml(partner_id)}
    loaded = await api.client.put(
        "/v1/admin/contracts", json={"files": [contract]}, headers=operator
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["stored"] == [f"{partner_id} v1"]
    return partner_id


OPERATOR_CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/admin/partners", None),
    ("POST", "/v1/admin/partners", {"partner_id": "never-made", "legal_name": "Never GmbH"}),
    ("GET", "/v1/admin/partners/never-made/keys", None),
    ("POST", "/v1/admin/partners/never-made/keys", {"public_key": "AAAA"}),
    ("POST", "/v1/admin/keys/never-made-key/revoke", None),
    ("PUT", "/v1/admin/clock", {"at": "2030-01-01T00:00:00Z"}),
]
CALL_IDS = [f"{method} {path}" for method, path, _ in OPERATOR_CALLS]


async def _call(
    api: SignedApi, call: tuple[str, str, dict[str, Any] | None], headers: dict[str, str]
) -> httpx.Response:
    method, path, body = call
    return await api.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("call", OPERATOR_CALLS, ids=CALL_IDS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic b3BlcmF0b3I6c2VjcmV0",
        "Bearer chk_operator_not-a-real-token",
        "Bearer not-even-the-prefix",
        "Bearer " + "chk_" + "x" * 300,
    ],
    ids=["absent", "no-secret", "empty-secret", "basic", "wrong", "no-prefix", "overlong"],
)
async def test_operator_endpoints_refuse_a_missing_or_wrong_token(
    api: SignedApi, call: tuple[str, str, dict[str, Any] | None], authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_problem(await _call(api, call, headers), 401, "invalid_token")


async def test_an_expired_token_is_invalid_token(api: SignedApi) -> None:
    issued = {}
    for label, expires_at in (
        ("past", utc_now() - timedelta(seconds=1)),
        ("future", utc_now() + timedelta(minutes=5)),
    ):
        secret = f"{access.TOKEN_PREFIX}operator_{secrets.token_urlsafe(32)}"
        async with api.database.driver_connection() as connection:
            await access_store.insert_token(
                connection,
                f"tok_{secrets.token_hex(8)}",
                Role.OPERATOR.value,
                access.token_digest(secret),
                label,
                expires_at,
            )
        issued[label] = {"Authorization": f"Bearer {secret}"}
    assert (await api.client.get("/v1/admin/partners", headers=issued["future"])).status_code == 200
    assert_problem(
        await api.client.get("/v1/admin/partners", headers=issued["past"]), 401, "invalid_token"
    )


async def test_a_revoked_token_is_invalid_token_on_the_next_request(api: SignedApi) -> None:
    token = await access.create_token(api.database, Role.OPERATOR, utc_now() + timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token.secret}"}
    assert (await api.client.get("/v1/admin/partners", headers=headers)).status_code == 200
    await access.revoke_token(api.database, token.token_id)
    assert_problem(
        await api.client.get("/v1/admin/partners", headers=headers), 401, "invalid_token"
    )


@pytest.mark.parametrize("call", OPERATOR_CALLS, ids=CALL_IDS)
async def test_an_auditor_token_on_an_operator_endpoint_is_forbidden(
    api: SignedApi, call: tuple[str, str, dict[str, Any] | None]
) -> None:
    auditor = {"Authorization": f"Bearer {await _token(api.database, Role.AUDITOR)}"}
    assert_problem(await _call(api, call, auditor), 403, "forbidden")


async def test_an_operator_adds_and_lists_partners(
    api: SignedApi, operator: dict[str, str]
) -> None:
    partner_id = unique("shop")
    response = await api.client.post(
        "/v1/admin/partners",
        json={"partner_id": partner_id, "legal_name": "Bäckerei Schmidt GmbH"},
        headers=operator,
    )
    assert response.status_code == 201
    created = response.json()
    assert created["partner_id"] == partner_id
    assert created["legal_name"] == "Bäckerei Schmidt GmbH"
    assert created["active_keys"] == 0
    assert created["created_at"].endswith("Z")
    listed = (await api.client.get("/v1/admin/partners", headers=operator)).json()
    assert created in listed
    again = await api.client.post(
        "/v1/admin/partners",
        json={"partner_id": partner_id, "legal_name": "Someone Else GmbH"},
        headers=operator,
    )
    assert_problem(again, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        {"partner_id": "has space", "legal_name": "X GmbH"},
        {"partner_id": "ok-id", "legal_name": ""},
        {"partner_id": "ok-id", "legal_name": "X GmbH", "extra": 1},
        {"legal_name": "X GmbH"},
    ],
    ids=["bad-id", "empty-name", "unknown-field", "missing-id"],
)
async def test_a_bad_partner_is_invalid_request(
    api: SignedApi, operator: dict[str, str], body: dict[str, Any]
) -> None:
    response = await api.client.post("/v1/admin/partners", json=body, headers=operator)
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize("form", ["pem", "base64"])
async def test_an_operator_adds_a_key_that_then_signs(
    api: SignedApi, operator: dict[str, str], form: str
) -> None:
    partner_id = await _partner_id(api, operator)
    key = PartnerKey.generate(f"{partner_id}-{form}")
    text = key.public_pem if form == "pem" else key.public_base64
    response = await api.client.post(
        f"/v1/admin/partners/{partner_id}/keys",
        json={"public_key": text, "key_id": key.key_id},
        headers=operator,
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["key_id"] == key.key_id
    assert added["partner_id"] == partner_id
    assert base64.b64decode(added["public_key"]) == key.public_raw
    assert added["revoked_at"] is None
    assert added["not_after"] is None
    member = await api.member(balance=0)
    entry = await api.accepted(api.points("issue", key, member, 3))
    assert entry["partner_id"] == partner_id


async def test_keys_are_listed_and_a_revoked_key_fails_on_the_next_request(
    api: SignedApi, operator: dict[str, str]
) -> None:
    partner_id = await _partner_id(api, operator)
    keys = [PartnerKey.generate(f"{partner_id}-{n}") for n in (1, 2)]
    not_after = (utc_now() + timedelta(days=90)).replace(microsecond=0)
    for key in keys:
        response = await api.client.post(
            f"/v1/admin/partners/{partner_id}/keys",
            json={
                "public_key": key.public_base64,
                "key_id": key.key_id,
                "not_after": not_after.isoformat(),
            },
            headers=operator,
        )
        assert response.status_code == 201, response.text
    keys_path = f"/v1/admin/partners/{partner_id}/keys"
    listed = (await api.client.get(keys_path, headers=operator)).json()
    assert [k["key_id"] for k in listed] == [k.key_id for k in keys]
    assert {datetime.fromisoformat(k["not_after"].replace("Z", "+00:00")) for k in listed} == {
        not_after
    }
    member = await api.member(balance=0)
    await api.accepted(api.points("issue", keys[0], member, 3))

    revoked = await api.client.post(f"/v1/admin/keys/{keys[0].key_id}/revoke", headers=operator)
    assert revoked.status_code == 200, revoked.text
    await api.refused(api.points("issue", keys[0], member, 3), 401, "unknown_key")
    await api.accepted(api.points("issue", keys[1], member, 3))

    after = (await api.client.get(keys_path, headers=operator)).json()
    assert [k["revoked_at"] is not None for k in after] == [True, False]
    partners = (await api.client.get("/v1/admin/partners", headers=operator)).json()
    assert next(p for p in partners if p["partner_id"] == partner_id)["active_keys"] == 1
    again = await api.client.post(f"/v1/admin/keys/{keys[0].key_id}/revoke", headers=operator)
    assert_problem(again, 404, "not_found")


async def test_a_key_for_an_unknown_partner_is_not_found(
    api: SignedApi, operator: dict[str, str]
) -> None:
    key = PartnerKey.generate("nobody-key")
    response = await api.client.post(
        f"/v1/admin/partners/{unique('nobody')}/keys",
        json={"public_key": key.public_base64},
        headers=operator,
    )
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        base64.b64encode(b"\x01" * 31).decode(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ],
    ids=["garbage", "31-bytes", "bad-pem"],
)
async def test_a_malformed_key_is_invalid_request(
    api: SignedApi, operator: dict[str, str], text: str
) -> None:
    partner_id = await _partner_id(api, operator)
    response = await api.client.post(
        f"/v1/admin/partners/{partner_id}/keys", json={"public_key": text}, headers=operator
    )
    assert_problem(response, 400, "invalid_request")


async def _ledger_offset(api: SignedApi) -> timedelta:
    async with api.database.driver_connection() as connection:
        offset = await connection.fetchval("SELECT offset_interval FROM ledger_clock")
    assert isinstance(offset, timedelta)
    return offset


async def test_the_sandbox_clock_can_be_set_and_moves_business_time(
    api: SignedApi, operator: dict[str, str]
) -> None:
    at = datetime(2030, 1, 31, 23, 59, 50, tzinfo=UTC)
    partner = await api.partner()
    member = await api.member(balance=0)
    saved = await _ledger_offset(api)
    try:
        response = await api.client.put(
            "/v1/admin/clock", json={"at": at.isoformat()}, headers=operator
        )
        assert response.status_code == 200, response.text
        ledger_time = datetime.fromisoformat(response.json()["ledger_time"].replace("Z", "+00:00"))
        assert timedelta(0) <= ledger_time - at < timedelta(seconds=5)
        entry = await api.issued(partner, member, 5)
        assert entry["period"] == "2030-02"  # 00:59:5x in Berlin: the clock keeps ticking
    finally:
        async with api.database.driver_connection() as connection:
            await connection.execute("UPDATE ledger_clock SET offset_interval = $1", saved)
    # Signatures are still judged by real time: the request above was accepted.


async def test_a_clock_without_a_time_zone_is_invalid_request(
    api: SignedApi, operator: dict[str, str]
) -> None:
    saved = await _ledger_offset(api)
    response = await api.client.put(
        "/v1/admin/clock", json={"at": "2030-01-01T00:00:00"}, headers=operator
    )
    assert_problem(response, 400, "invalid_request")
    assert await _ledger_offset(api) == saved


async def test_the_clock_does_not_exist_outside_sandbox_mode(
    database: Database, tmp_path: Path, operator: dict[str, str]
) -> None:
    async with signed_api(
        database, tmp_path, CLEARHOUSE_SANDBOX="0", CLEARHOUSE_MASTER_KEY=MASTER_KEY
    ) as production:
        assert production.settings.sandbox is False
        saved = await _ledger_offset(production)
        response = await production.client.put(
            "/v1/admin/clock", json={"at": "2030-01-01T00:00:00Z"}, headers=operator
        )
        assert_problem(response, 404, "not_found")
        assert await _ledger_offset(production) == saved
        listed = await production.client.get("/v1/admin/partners", headers=operator)
        assert listed.status_code == 200  # the operator API itself is there


async def test_the_coalition_keys_are_served_unsigned_and_verify_a_receipt(
    api: SignedApi,
) -> None:
    response = await api.client.get("/v1/keys")
    assert response.status_code == 200
    assert "signature" not in response.headers
    (key,) = [
        k for k in response.json()["keys"] if k["status"] == "current" and "response" in k["use"]
    ]
    assert key["not_after"] is None
    assert key["algorithm"] == "ed25519"
    assert set(key["use"]) == {"response", "statement"}
    coalition_private = load_private_key(api.settings.signing_key_file.read_bytes())
    assert base64.b64decode(key["public_key"]) == public_bytes(coalition_private)

    partner = await api.partner()
    member = await api.member(balance=0)
    issued = await api.send(api.points("issue", partner, member, 5))
    assert issued.status_code == 201
    result = verify_receipt(issued, key_lines(response))
    assert result.parameters["keyid"] == key["key_id"]

    impostor = {key["key_id"]: public_bytes(Ed25519PrivateKey.generate())}
    with pytest.raises(InvalidSignature):
        verify_receipt(issued, impostor)
