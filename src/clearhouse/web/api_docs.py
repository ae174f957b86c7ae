"""The API's own documentation: the OpenAPI document and the one page that shows it.

``/schema`` is Swagger UI, served from the files the ``swagger-ui-bundle-v2`` package ships
(under ``/schema/swagger-ui/``), so the page works on a machine with no way out to the internet;
the other viewers Litestar offers load their scripts from a CDN and are switched off. The
document itself stays at ``/schema/openapi.json`` (and ``.yaml``).

The document declares how each part of the API authenticates: ``PartnerSignature`` (RFC 9421,
on every route of the partner router) and ``OperatorToken`` (a bearer token, on the operator
and auditor routes under ``/v1/admin`` and ``/v1/audit``). ``/v1/keys`` and the health routes
need neither.

What Litestar writes of the handlers is finished here, once for every operation, in
``finish_document``: a signed operation gets the headers of a signed request as parameters
(``Signature``, ``Signature-Input``, and with a body ``Content-Digest``; ``Idempotency-Key`` and
``Data-Purpose`` are the handlers' own parameters) and the receipt's headers on its answers;
and every body gets an example (``clearhouse.web.api_examples``). An operation that may answer with
a stored earlier answer declares ``response_headers=REPLAYABLE``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from litestar import Router
from litestar.datastructures import ResponseHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, SecurityRequirement, SecurityScheme
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from clearhouse import __version__
from clearhouse.web.api_examples import COMPONENT_EXAMPLES, OPERATION_EXAMPLES

SCHEMA_PATH: Final = "/schema"
SWAGGER_UI_PATH: Final = f"{SCHEMA_PATH}/swagger-ui"
"""Where the Swagger UI files are served; under ``/schema``, beside the page that loads them."""

SIGNATURE_SCHEME: Final = "PartnerSignature"
BEARER_SCHEME: Final = "OperatorToken"

PARTNER_SIGNED: Final[list[SecurityRequirement]] = [{SIGNATURE_SCHEME: []}]
TOKEN_BEARING: Final[list[SecurityRequirement]] = [{BEARER_SCHEME: []}]

SECURITY_SCHEMES: Final = {
    # OpenAPI has no scheme for HTTP Message Signatures; an apiKey in the `Signature` header is
    # the closest that validators and viewers accept, and the description says the rest.
    SIGNATURE_SCHEME: SecurityScheme(
        type="apiKey",
        name="Signature",
        security_scheme_in="header",
        description=(
            "RFC 9421 HTTP Message Signature with the partner's Ed25519 key. A request carries "
            "`Signature` and `Signature-Input` (parameters `created`, `keyid`, `nonce`; `alg` "
            "only `ed25519`) covering `@method`, `@target-uri` and `data-purpose`, with a body "
            "also `content-type` and `content-digest`, on POST also `idempotency-key`; and a "
            "`Content-Digest` (RFC 9530, SHA-256 or SHA-512) of the exact body bytes. Every "
            "answer is signed back as a receipt. The partner guide (docs/partner-guide.md, "
            "section 3) builds a signature step by step; the `clearhouse_client` package signs "
            "for you."
        ),
    ),
    BEARER_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description=(
            "`Authorization: Bearer <token>`: an operator token (from `clearhouse token create`)"
            " for `/v1/admin/` and `/v1/audit/`, or an auditor token for `/v1/audit/` only."
        ),
    ),
}

REPLAYABLE: Final = [
    ResponseHeader(
        name="Idempotent-Replayed",
        value="true",
        documentation_only=True,
        description="`true` when this is the answer to an earlier request with the same "
        "`Idempotency-Key` and body, sent again: nothing was written this time. Absent on the "
        "first answer.",
    )
]
"""The answers of the operations that replay an earlier one (their handlers set the header)."""


def _header(name: str, description: str) -> dict[str, Any]:
    """A header every request of the operation carries (the middleware refuses one without)."""
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


SIGNATURE_PARAMETERS: Final = (
    _header(
        "Signature",
        "RFC 9421 signature(s) by label, e.g. `sig1=:<base64 Ed25519 signature>:` (the header "
        "of the `PartnerSignature` scheme, listed here with the other signed-request headers).",
    ),
    _header(
        "Signature-Input",
        "The covered components and parameters of each signature in `Signature`, e.g. "
        '`sig1=("@method" "@target-uri" "data-purpose");created=1764756900;'
        'keyid="acme-fuel-key-1";nonce="3q2-7wAAAAAAAAAAAAAAAA"`.',
    ),
)
CONTENT_DIGEST_PARAMETER: Final = _header(
    "Content-Digest",
    "RFC 9530 digest of the exact body bytes, SHA-256 or SHA-512, e.g. `sha-256=:<base64>:`; "
    "covered by the signature.",
)
RECEIPT_HEADERS: Final = {
    "Signature": {
        "description": "The coalition's receipt (label `receipt`), an RFC 9421 signature with "
        "the coalition key (`GET /v1/keys`) over `@status`, `content-digest` and the "
        "request's signature; on every answer to a request whose signature verified.",
        "schema": {"type": "string"},
    },
    "Signature-Input": {
        "description": "What the receipt covers, with its `created` and `keyid`.",
        "schema": {"type": "string"},
    },
    "Content-Digest": {
        "description": "SHA-256 of the answer's body (RFC 9530), covered by the receipt.",
        "schema": {"type": "string"},
    },
}
UNSIGNED_ANSWERS: Final = frozenset({"401"})
"""A refusal of the signature itself: no partner to give a receipt to."""

_METHODS: Final = ("get", "put", "post", "delete", "patch")


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def _document_signature(operation: dict[str, Any]) -> None:
    """A signed request's headers as parameters, and the receipt on each signed answer."""
    parameters = operation.setdefault("parameters", [])
    parameters.extend(copy.deepcopy(SIGNATURE_PARAMETERS))
    if "requestBody" in operation:
        parameters.append(copy.deepcopy(CONTENT_DIGEST_PARAMETER))
    for status, response in operation["responses"].items():
        if status not in UNSIGNED_ANSWERS:
            response.setdefault("headers", {}).update(copy.deepcopy(RECEIPT_HEADERS))


def _example_of(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    """The example of a body's component (or of a list of one), if it has one."""
    if "$ref" in schema:
        examples = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {}).get("examples")
        return examples[0] if examples else None
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        item = _example_of(schema["items"], schemas)
        return None if item is None else [item]
    return None


def _bodies(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The media types of the request body and of the answers that are not problems."""
    yield from operation.get("requestBody", {}).get("content", {}).values()
    for status, response in operation["responses"].items():
        if int(status) < 400:
            yield from response.get("content", {}).values()


def _document_examples(document: dict[str, Any]) -> None:
    """Each component's example on its schema, and on every body of that component (or a list
    of it) where a viewer looks first; the other bodies' by operation."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    for name, example in COMPONENT_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [copy.deepcopy(example)]
    for method, path, operation in _operations(document):
        for media in _bodies(operation):
            if "example" in media or "examples" in media:
                continue
            example = _example_of(media.get("schema", {}), schemas)
            if example is None:
                example = OPERATION_EXAMPLES.get((method, path))
            if example is not None:
                media["example"] = copy.deepcopy(example)


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """What the handlers do not say: the signature's headers and the examples (in place)."""
    for _, _, operation in _operations(document):
        if operation.get("security") == PARTNER_SIGNED:
            _document_signature(operation)
    _document_examples(document)
    return document


@dataclasses.dataclass
class _FinishedOpenAPI(OpenAPI):
    """The document as Litestar builds it, finished by ``finish_document`` when written out
    (``/schema/openapi.json`` and ``.yaml`` are this). Litestar has no hook after it builds the
    paths; the config's ``to_openapi_schema`` is where the document object is made."""

    def to_schema(self) -> dict[str, Any]:
        return finish_document(super().to_schema())


@dataclasses.dataclass
class _OpenAPIConfig(OpenAPIConfig):
    """Litestar's configuration, whose document is finished by ``finish_document``."""

    def to_openapi_schema(self) -> OpenAPI:
        built = super().to_openapi_schema()
        return _FinishedOpenAPI(
            **{f.name: getattr(built, f.name) for f in dataclasses.fields(built)}
        )


_FAVICON: Final = f"<link rel='icon' type='image/png' href='{SWAGGER_UI_PATH}/favicon-32x32.png'>"


def swagger_ui_files() -> Router:
    """The Swagger UI files, from the installed package, outside the OpenAPI document."""
    return create_static_files_router(
        path=SWAGGER_UI_PATH, directories=[Path(swagger_ui_path)], name="swagger-ui"
    )


def openapi_config() -> OpenAPIConfig:
    """The document at ``/schema/openapi.json`` and Swagger UI at ``/schema``, all local."""
    return _OpenAPIConfig(
        title="Clearhouse",
        version=__version__,
        description="The clearing house of a loyalty coalition: signed partner API, "
        "operator and auditor endpoints. Errors are RFC 9457 problems with a stable `code`.",
        path=SCHEMA_PATH,
        components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{SWAGGER_UI_PATH}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER_UI_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_UI_PATH}/swagger-ui-standalone-preset.js",
                favicon=_FAVICON,
            ),
            YamlRenderPlugin(),
        ],
    )
