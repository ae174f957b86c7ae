"""The OpenAPI document at /schema: valid OpenAPI 3.1, every partner and operator endpoint,
each with its problem responses as application/problem+json (SPEC 4.2, 4.4)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from litestar.routes import HTTPRoute
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from clearhouse.services.database import Database
from tests.web.harness import SignedApi, signed_api

SIGNATURE_CODES = (
    "missing_signature",
    "invalid_signature",
    "unknown_key",
    "stale_signature",
    "replayed_request",
    "digest_mismatch",
)
PARTNER_READS = {
    ("get", "/v1/transactions/{entry_id}"),
    ("get", "/v1/transactions"),
}
PARTNER_WRITES = {
    ("post", "/v1/transactions/issue"),
    ("post", "/v1/transactions/redeem"),
    ("post", "/v1/transactions/{entry_id}/reversals"),
}
OPERATOR = {
    ("get", "/v1/admin/partners"),
    ("post", "/v1/admin/partners"),
    ("get", "/v1/admin/partners/{partner_id}/keys"),
    ("post", "/v1/admin/partners/{partner_id}/keys"),
    ("post", "/v1/admin/keys/{key_id}/revoke"),
    ("put", "/v1/admin/clock"),
}
UNSIGNED = {("get", "/v1/keys"), ("get", "/health"), ("get", "/ready")}

FORMAT_CHECKER = FormatChecker()

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
"""A master key for coalitions outside sandbox mode in these tests."""


@pytest.fixture
async def document(api: SignedApi) -> dict[str, Any]:
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch"}
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


def _responses(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = document["paths"][path][method]["responses"]
    return responses


def _codes(response: dict[str, Any]) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", response["description"]))


def _problem_schema(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = response["content"]["application/problem+json"]["schema"]
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def test_the_document_validates(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_document_validator_is_not_a_rubber_stamp(document: dict[str, Any]) -> None:
    broken = {**document, "paths": {"/v1/keys": {"get": {"responses": "none"}}}}
    with pytest.raises(OpenAPIValidationError, match="responses"):
        validate(broken)


def test_every_partner_and_operator_endpoint_is_listed(document: dict[str, Any]) -> None:
    listed = _operations(document)
    assert listed >= PARTNER_READS | PARTNER_WRITES | OPERATOR | UNSIGNED


def test_every_route_of_the_app_is_in_the_document(
    api: SignedApi, document: dict[str, Any]
) -> None:
    # A route left out on purpose (the console's pages, /schema itself) is not an operation.
    routes = {
        (method.lower(), route.path_format)
        for route in api.app.routes
        if isinstance(route, HTTPRoute)
        for method, (handler, _) in route.route_handler_map.items()
        if method not in {"OPTIONS", "HEAD"} and handler.resolve_include_in_schema()
    }
    assert routes == _operations(document)


def test_every_documented_error_is_a_problem(document: dict[str, Any]) -> None:
    wrong = {
        f"{method.upper()} {path} {status}"
        for method, path in PARTNER_READS | PARTNER_WRITES | OPERATOR
        for status, response in _responses(document, method, path).items()
        if int(status) >= 400 and set(response.get("content", {})) != {"application/problem+json"}
    }
    assert not wrong, f"documented errors that are not application/problem+json: {sorted(wrong)}"


@pytest.mark.parametrize(("method", "path"), sorted(PARTNER_READS | PARTNER_WRITES))
def test_a_partner_endpoint_lists_its_signature_and_request_problems(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = _responses(document, method, path)
    assert set(SIGNATURE_CODES) <= _codes(responses["401"])
    assert "invalid_request" in _codes(responses["400"])
    assert "purpose_not_permitted" in _codes(responses["403"])
    assert "unavailable" in _codes(responses["503"])
    if "{entry_id}" in path:
        assert "not_found" in _codes(responses["404"])
    for status in ("400", "401", "403", "503"):
        schema = _problem_schema(document, responses[status])
        assert {"type", "title", "status", "detail", "instance", "code"} <= set(schema["required"])


@pytest.mark.parametrize(("method", "path"), sorted(PARTNER_WRITES))
def test_a_partner_write_lists_its_write_problems(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = _responses(document, method, path)
    assert {"insufficient_points", "idempotency_key_in_use"} <= _codes(responses["409"])
    assert "payload_too_large" in _codes(responses["413"])
    assert "unsupported_media_type" in _codes(responses["415"])
    assert "idempotency_key_reused" in _codes(responses["422"])


@pytest.mark.parametrize(("method", "path"), sorted(OPERATOR))
def test_an_operator_endpoint_lists_its_token_problems(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = _responses(document, method, path)
    assert _codes(responses["401"]) == {"invalid_token"}
    assert "forbidden" in _codes(responses["403"])
    assert "unavailable" in _codes(responses["503"])


async def test_the_clock_is_not_documented_outside_sandbox_mode(
    database: Database, tmp_path: Path
) -> None:
    async with signed_api(
        database, tmp_path, CLEARHOUSE_SANDBOX="0", CLEARHOUSE_MASTER_KEY=MASTER_KEY
    ) as production:
        document = (await production.client.get("/schema/openapi.json")).json()
    validate(document)
    assert "/v1/admin/clock" not in document["paths"]
    assert OPERATOR - {("put", "/v1/admin/clock")} <= _operations(document)


def test_the_document_declares_how_partners_and_operators_authenticate(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    signature = schemes["PartnerSignature"]
    assert (signature["type"], signature["in"], signature["name"]) == (
        "apiKey",
        "header",
        "Signature",
    )
    for named in ("RFC 9421", "Signature-Input", "Content-Digest", "partner guide"):
        assert named in signature["description"]
    assert (schemes["OperatorToken"]["type"], schemes["OperatorToken"]["scheme"]) == (
        "http",
        "bearer",
    )


@pytest.mark.parametrize(
    ("method", "path", "scheme"),
    [
        *((method, path, "PartnerSignature") for method, path in sorted(PARTNER_WRITES)),
        ("get", "/v1/transactions", "PartnerSignature"),
        ("get", "/v1/statements/{period}", "PartnerSignature"),
        *((method, path, "OperatorToken") for method, path in sorted(OPERATOR)),
        ("get", "/v1/audit/disclosures", "OperatorToken"),
        ("get", "/metrics", "OperatorToken"),
    ],
)
def test_a_signed_or_token_route_names_its_security_scheme(
    document: dict[str, Any], method: str, path: str, scheme: str
) -> None:
    assert document["paths"][path][method]["security"] == [{scheme: []}]


def test_every_v1_route_but_the_keys_names_one_security_scheme(
    document: dict[str, Any],
) -> None:
    unsecured = {
        f"{method.upper()} {path}"
        for method, path in _operations(document)
        if path.startswith("/v1/") and path != "/v1/keys"
        if len(document["paths"][path][method].get("security", [])) != 1
    }
    assert not unsecured
    assert "security" not in document["paths"]["/v1/keys"]["get"]


REPLAYING = {
    ("post", "/v1/transactions/batch"),
    ("post", "/v1/transactions/issue"),
    ("post", "/v1/transactions/redeem"),
    ("post", "/v1/transactions/{entry_id}/reversals"),
    ("post", "/v1/holds"),
    ("post", "/v1/holds/{hold_id}/capture"),
    ("post", "/v1/holds/{hold_id}/void"),
    ("post", "/v1/members"),
    ("post", "/v1/webhook-endpoints"),
}
"""The operations whose handlers answer ``Idempotent-Replayed: true`` to a replay."""


def _signed(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, document["paths"][path][method])
        for method, path in sorted(_operations(document))
        if document["paths"][path][method].get("security") == [{"PartnerSignature": []}]
    ]


def _headers(operation: dict[str, Any]) -> dict[str, bool]:
    return {
        p["name"]: p.get("required", False)
        for p in operation.get("parameters", [])
        if p["in"] == "header"
    }


def test_a_signed_operation_declares_the_headers_of_a_signed_request(
    document: dict[str, Any],
) -> None:
    signed = _signed(document)
    assert len(signed) >= len(PARTNER_READS | PARTNER_WRITES)
    for method, path, operation in signed:
        headers = _headers(operation)
        where = f"{method.upper()} {path}"
        assert headers.get("Signature") is True, where
        assert headers.get("Signature-Input") is True, where
        assert headers.get("Data-Purpose") is True, where
        assert headers.get("Content-Digest") is ("requestBody" in operation or None), where
        assert headers.get("Idempotency-Key") is (method == "post" or None), where


def test_an_unsigned_operation_declares_no_signature_headers(document: dict[str, Any]) -> None:
    signed = {(method, path) for method, path, _ in _signed(document)}
    for method, path in _operations(document) - signed:
        assert not {"Signature", "Signature-Input", "Content-Digest"} & set(
            _headers(document["paths"][path][method])
        ), f"{method.upper()} {path}"


def test_every_signed_answer_but_a_refused_signature_declares_the_receipt(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _signed(document):
        for status, response in operation["responses"].items():
            declared = set(response.get("headers", {}))
            receipt = {"Signature", "Signature-Input", "Content-Digest"}
            where = f"{method.upper()} {path} {status}"
            assert (receipt <= declared) is (status != "401"), where


def test_the_operations_that_replay_declare_idempotent_replayed(
    document: dict[str, Any],
) -> None:
    declaring = {
        (method, path)
        for method, path in _operations(document)
        for status, response in _responses(document, method, path).items()
        if int(status) < 300 and "Idempotent-Replayed" in response.get("headers", {})
    }
    assert declaring == REPLAYING


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """``schema`` with the document's components beside it, so that its ``$ref`` resolve."""
    return Draft202012Validator(
        {**schema, "components": document["components"]}, format_checker=FORMAT_CHECKER
    )


def _examples(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """Every example in the document: where, the schema it illustrates, and its value."""
    found: list[tuple[str, dict[str, Any], Any]] = [
        (f"components {name}", schema, example)
        for name, schema in document["components"]["schemas"].items()
        for example in schema.get("examples", [])
    ]
    for method, path in sorted(_operations(document)):
        operation = document["paths"][path][method]
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [(status, r.get("content", {})) for status, r in operation["responses"].items()]
        for status, content in bodies:
            for media_type, media in content.items():
                where = f"{method.upper()} {path} {status} {media_type}"
                if "example" in media:
                    found.append((where, media.get("schema", {}), media["example"]))
                for name, example in media.get("examples", {}).items():
                    found.append((f"{where} {name}", media.get("schema", {}), example["value"]))
    return found


def test_every_body_has_an_example(document: dict[str, Any]) -> None:
    bare = {
        f"{method.upper()} {path} {status} {media_type}"
        for method, path in _operations(document)
        for status, response in [
            ("request", document["paths"][path][method].get("requestBody", {})),
            *_responses(document, method, path).items(),
        ]
        for media_type, media in response.get("content", {}).items()
        if "example" not in media and not media.get("examples")
    }
    assert not bare, f"bodies without an example: {sorted(bare)}"


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    examples = _examples(document)
    assert len(examples) > 100
    invalid = {
        where: error.message
        for where, schema, example in examples
        for error in _validator(document, schema).iter_errors(example)
    }
    assert not invalid, invalid


def test_the_example_check_is_not_a_rubber_stamp(document: dict[str, Any]) -> None:
    entry = document["components"]["schemas"]["Entry"]
    wrong = {**entry["examples"][0], "points": "250", "entry_id": "not-a-uuid"}
    assert len(list(_validator(document, entry).iter_errors(wrong))) == 2
