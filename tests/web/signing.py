"""Signed partner requests built the way a partner builds them, with knobs to tamper.

Everything here signs and verifies with the PyPI package ``http_message_signatures`` directly
(``HTTPMessageSigner``/``HTTPMessageVerifier``, ``algorithms.ED25519``, a key resolver), not
through the partner client (``clearhouse_client``): it is the independent RFC 9421
implementation that the server must interoperate with. ``RequestMessage``/``HeaderFields`` of
``clearhouse.crypto.http_signatures`` only adapt an ``httpx.Request`` to the package's message
interface.

The profile a request is signed with by default is SPEC 4.1, written out here on its own
(``profile_components``) rather than taken from the server's code.

Knobs: ``sign_request`` signs with any key under any ``keyid`` (another key), any covered
component list (``covered``/``omit``), any ``created``/``expires``/``nonce``, unknown signature
parameters (``extra_params``, signed into the base), and appends further signatures
(``append=True``); ``partner_request`` sets any ``Content-Digest`` before signing (a wrong or
md5-only digest is then validly signed); ``altered`` changes body, headers, path or query after
signing and can repeat header lines.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

import http_sf
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    VerifyResult,
    algorithms,
)

from clearhouse.crypto.http_signatures import HeaderFields, RequestMessage, ResponseMessage

LABEL: Final = "sig1"
PURPOSE_OF_PATH: Final = {
    "/v1/transactions/issue": "accrual",
    "/v1/transactions/redeem": "redemption",
}


class Auto(Enum):
    """The default of a knob: what a well-behaved partner would send."""

    AUTO = "auto"


AUTO: Final = Auto.AUTO


@dataclass(frozen=True)
class PartnerKey:
    """A partner's Ed25519 key pair under the ``keyid`` it signs with."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, key_id: str) -> PartnerKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @property
    def public_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_base64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


class _PresetDigest(ContentDigest):
    """Keeps whatever ``Content-Digest`` the request already holds, right or wrong.

    The package (rightly) refuses to sign a digest that does not match the body or uses md5;
    a hostile partner's software would not, and the server must refuse such requests itself.
    """

    @classmethod
    def prepare(cls, headers: Any, body: bytes | None, *, use_existing_digest: bool) -> None:
        return None


class _AnyDigestSigner(HTTPMessageSigner):
    content_digest_class = _PresetDigest


def sha256_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` value of ``body`` with SHA-256 (computed here)."""
    return http_sf.ser({"sha-256": (hashlib.sha256(body).digest(), {})})


def md5_digest(body: bytes) -> str:
    return http_sf.ser({"md5": (hashlib.md5(body).digest(), {})})


def profile_components(method: str, *, has_body: bool, purpose: bool) -> list[str]:
    """The components SPEC 4.1 requires a partner's signature to cover on such a request."""
    covered = ["@method", "@target-uri"]
    if has_body:
        covered += ["content-type", "content-digest"]
    if method == "POST":
        covered.append("idempotency-key")
    if purpose:
        covered.append("data-purpose")
    return covered


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def _message(request: httpx.Request) -> RequestMessage:
    return RequestMessage(
        request.method, str(request.url), HeaderFields(request.headers.multi_items())
    )


def _params_suffix(extra_params: Mapping[str, str | int | bool]) -> str:
    return "".join(f";{name}={http_sf.ser(value)}" for name, value in extra_params.items())


def sign_request(
    request: httpx.Request,
    key: PartnerKey,
    *,
    covered: Sequence[str] | None = None,
    omit: Collection[str] = (),
    created: datetime | None = None,
    expires: datetime | None = None,
    nonce: str | Auto | None = AUTO,
    include_alg: bool = True,
    tag: str | None = None,
    extra_params: Mapping[str, str | int | bool] | None = None,
    private_key: Ed25519PrivateKey | None = None,
    label: str = LABEL,
    append: bool = False,
) -> httpx.Request:
    """Sign ``request`` in place (and return it) with ``http_message_signatures``.

    ``covered`` defaults to SPEC 4.1's profile for the request, minus ``omit``;
    ``private_key`` signs under ``key.key_id`` with another key; ``nonce=None`` leaves the
    nonce out; ``extra_params`` are further signature parameters, signed into the base;
    ``append`` keeps the signatures already on the request and adds this one.
    """
    if covered is None:
        covered = profile_components(
            request.method,
            has_body=bool(request.content) or request.method in {"POST", "PUT", "PATCH"},
            purpose="data-purpose" in request.headers,
        )
    components = [c for c in covered if c not in omit]
    signing_key = private_key or key.private_key
    signer = _AnyDigestSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key.key_id: signing_key}),
    )
    message = _message(request)
    options: dict[str, Any] = {
        "key_id": key.key_id,
        "created": created or datetime.now(UTC),
        "expires": expires,
        "nonce": new_nonce() if nonce is AUTO else nonce,
        "label": label,
        "tag": tag,
        "include_alg": include_alg,
        "covered_component_ids": components,
    }
    if not extra_params:
        signer.sign(message, append_if_signature_exists=append, **options)
        request.headers = httpx.Headers(message.headers.items())
        return request
    # Parameters the package does not know (or an ``alg`` that contradicts the key): the
    # package still builds the signature base; the parameters are appended to it and to the
    # Signature-Input member, and the base is signed as it stands.
    prepared = signer.prepare(message, **options)
    suffix = _params_suffix(extra_params)
    base = prepared.signature_base + suffix.encode()
    signature = algorithms.ED25519(private_key=signing_key).sign(base)
    members = {
        "signature-input": f"{label}={prepared.signature_params}{suffix}",
        "signature": f"{label}=:{base64.b64encode(signature).decode()}:",
    }
    for name, member in members.items():
        existing = request.headers.get(name) if append else None
        request.headers[name] = member if existing is None else f"{existing}, {member}"
    return request


def partner_request(
    base_url: str,
    method: str,
    path: str,
    key: PartnerKey,
    *,
    body: bytes | Mapping[str, Any] | None = None,
    params: Mapping[str, str | int] | None = None,
    purpose: str | Auto | None = AUTO,
    idempotency_key: str | Auto | None = AUTO,
    content_type: str | Auto | None = AUTO,
    content_digest: str | Auto | None = AUTO,
    headers: Sequence[tuple[str, str]] = (),
    **signature: Any,
) -> httpx.Request:
    """A signed request as a partner sends it; every header can be overridden or left out.

    Defaults: JSON body (a mapping is encoded), ``Content-Type: application/json``, the SHA-256
    ``Content-Digest`` of the body, a fresh ``Idempotency-Key`` on POST, the ``Data-Purpose``
    of the endpoint (``settlement`` on reads). ``signature`` goes to ``sign_request``.
    """
    content = httpx.Request("POST", "/", json=body).content if isinstance(body, Mapping) else body
    lines: list[tuple[str, str]] = [("Accept", "application/json")]
    if content is not None and content_type is AUTO:
        lines.append(("Content-Type", "application/json"))
    elif isinstance(content_type, str):
        lines.append(("Content-Type", content_type))
    if content is not None and content_digest is AUTO:
        lines.append(("Content-Digest", sha256_digest(content)))
    elif isinstance(content_digest, str):
        lines.append(("Content-Digest", content_digest))
    if idempotency_key is AUTO and method == "POST":
        lines.append(("Idempotency-Key", secrets.token_hex(16)))
    elif isinstance(idempotency_key, str):
        lines.append(("Idempotency-Key", idempotency_key))
    if purpose is AUTO:
        purpose = PURPOSE_OF_PATH.get(path, "settlement" if method == "GET" else None)
    if isinstance(purpose, str):
        lines.append(("Data-Purpose", purpose))
    lines += headers
    request = httpx.Request(method, base_url + path, params=params, content=content, headers=lines)
    return sign_request(request, key, **signature)


def altered(
    request: httpx.Request,
    *,
    path: str | None = None,
    params: Mapping[str, str | int] | None = None,
    host: str | None = None,
    content: bytes | None = None,
    set_headers: Mapping[str, str] | None = None,
    drop_headers: Collection[str] = (),
    add_lines: Sequence[tuple[str, str]] = (),
) -> httpx.Request:
    """A copy of a signed request with something changed after signing (signature kept)."""
    url = request.url
    if path is not None:
        url = url.copy_with(path=path)
    if params is not None:
        url = url.copy_with(params=params)
    if host is not None:
        url = url.copy_with(host=host)
    replaced = {name.lower(): value for name, value in (set_headers or {}).items()}
    dropped = {name.lower() for name in drop_headers} | set(replaced)
    body = request.content if content is None else content
    if content is not None:
        dropped.add("content-length")
    lines = [(n, v) for n, v in request.headers.multi_items() if n.lower() not in dropped]
    lines += list(replaced.items()) + list(add_lines)
    return httpx.Request(request.method, url, headers=lines, content=body)


def add_signature(
    request: httpx.Request, key: PartnerKey, *, label: str, **signature: Any
) -> httpx.Request:
    """Append one more signature (under ``label``) to a signed request."""
    return sign_request(request, key, label=label, append=True, **signature)


def signature_labels(request: httpx.Request) -> list[str]:
    parsed = http_sf.parse(request.headers["signature-input"].encode(), tltype="dictionary")
    assert isinstance(parsed, dict)
    return list(parsed)


def verify_request(request: httpx.Request, key_id: str, public_key: bytes) -> list[VerifyResult]:
    """Verify a request's signature independently of the server (raises InvalidSignature)."""
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={key_id: Ed25519PublicKey.from_public_bytes(public_key)}, private_keys={}
        ),
    )
    return verifier.verify(_message(request), max_age=None, body=request.content)


def verify_receipt(
    response: httpx.Response,
    coalition_keys: Mapping[str, bytes],
    *,
    request_label: str = LABEL,
) -> VerifyResult:
    """Verify the coalition's receipt on ``response`` with ``http_message_signatures``.

    The receipt must cover ``@status``, ``content-digest`` (checked against the body) and the
    request's signature under ``request_label``; raises ``InvalidSignature`` otherwise.
    """
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={
                key_id: Ed25519PublicKey.from_public_bytes(raw)
                for key_id, raw in coalition_keys.items()
            },
            private_keys={},
        ),
    )
    message = ResponseMessage(
        response.status_code,
        HeaderFields(response.headers.multi_items()),
        _message(response.request),
    )
    (result,) = verifier.verify(
        message,
        max_age=None,
        require_components=(
            "@status",
            "content-digest",
            f'"signature";req;key="{request_label}"',
        ),
        body=response.content,
    )
    return result


def key_lines(response: httpx.Response) -> dict[str, bytes]:
    """The coalition keys of a ``GET /v1/keys`` response, by key id."""
    return {k["key_id"]: base64.b64decode(k["public_key"]) for k in response.json()["keys"]}


def timestamp(moment: datetime) -> int:
    return int(moment.timestamp())
