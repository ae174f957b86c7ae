"""The API's own documentation: the OpenAPI document and the one page that shows it.

``/schema`` is Swagger UI, served from the files the ``swagger-ui-bundle-v2`` package ships
(under ``/schema/swagger-ui/``), so the page works on a machine with no way out to the internet;
the other viewers Litestar offers load their scripts from a CDN and are switched off. The
document itself stays at ``/schema/openapi.json`` (and ``.yaml``).

The document declares how each part of the API authenticates: ``PartnerSignature`` (RFC 9421,
on every route of the partner router) and ``OperatorToken`` (a bearer token, on the operator
and auditor routes under ``/v1/admin`` and ``/v1/audit``). ``/v1/keys`` and the health routes
need neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from litestar import Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from clearhouse import __version__

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

_FAVICON: Final = f"<link rel='icon' type='image/png' href='{SWAGGER_UI_PATH}/favicon-32x32.png'>"


def swagger_ui_files() -> Router:
    """The Swagger UI files, from the installed package, outside the OpenAPI document."""
    return create_static_files_router(
        path=SWAGGER_UI_PATH, directories=[Path(swagger_ui_path)], name="swagger-ui"
    )


def openapi_config() -> OpenAPIConfig:
    """The document at ``/schema/openapi.json`` and Swagger UI at ``/schema``, all local."""
    return OpenAPIConfig(
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
