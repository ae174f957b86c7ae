"""Signed partner requests (RFC 9421, Ed25519) in, signed receipts out.

``PartnerSignatureMiddleware`` guards every partner endpoint. In order, before any work:

1. the body is read up to the limit (413 ``payload_too_large`` past it, before any hashing);
2. a repeated ``Content-Type``, ``Idempotency-Key``, ``Data-Purpose``, ``Content-Digest``,
   ``Signature`` or ``Signature-Input`` line, or a non-ASCII covered value: 400;
3. a body that is not JSON: 415;
4. the signature profile of SPEC 4.1: parameters (``created``, ``keyid``, ``nonce`` required;
   ``alg`` only ``ed25519``; nothing else), the covered components the request needs, and
   ``created``/``expires`` against real time (``stale_signature``);
5. the key: known, not revoked, within its validity as last read (``unknown_key``);
6. ``Content-Digest`` (SHA-256 or SHA-512) against the raw body (``digest_mismatch``);
7. the signature itself over ``@target-uri`` rebuilt from the public base URL
   (``invalid_signature``); a request carries at most ``SIGNATURE_LABELS_MAX`` signatures,
   each field at most ``SIGNATURE_FIELD_BYTES_MAX`` bytes (checked before parsing); of several
   signatures, the first that passes counts;
8. the nonce of every signature that passes, once per key within the window: one seen before
   refuses the whole request (``replayed_request``). This is the request's one round trip to
   the database before its handler (the key's bytes were read once per process): the nonce is
   recorded only if the key is valid at that moment, so a key revoked since it was last read
   refuses the request (``unknown_key``).

The verified partner goes to ``scope["state"]["partner"]``; the response is then signed with the
coalition's key over ``@status``, ``content-digest`` and the request's signature. The signature
bases of both are written by ``crypto.signature_base`` where the request's shape allows, and
otherwise built by ``http-message-signatures``, whose bases they equal byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import http_sf
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.crypto.ed25519 import verify as ed25519_verify
from clearhouse.crypto.http_signatures import (
    HeaderFields,
    InvalidSignature,
    RequestMessage,
    content_digest,
    only_label,
    parse_dictionary,
    signature_base_of,
    verify_signature,
)
from clearhouse.crypto.signature_base import request_signature_base, sign_receipt
from clearhouse.domain.errors import ClearhouseError, InvalidRequest
from clearhouse.domain.records import PartnerKey
from clearhouse.services import access
from clearhouse.services.database import Database
from clearhouse.services.metrics import SIGNATURE_FAILURES
from clearhouse.web.bodies import read_body, replaying

NONCE_LENGTH_MIN: Final = 16
NONCE_LENGTH_MAX: Final = 128
SIGNATURE_LABELS_MAX: Final = 4
"""Signatures one request may carry: enough for a key rotation, not for a work factor."""
SIGNATURE_FIELD_BYTES_MAX: Final = 4096
"""The size of ``Signature`` and of ``Signature-Input``, each, checked before parsing."""
REQUIRED_PARAMETERS: Final = frozenset({"created", "keyid", "nonce"})
ALLOWED_PARAMETERS: Final = REQUIRED_PARAMETERS | {"alg", "expires"}
SINGLE_FIELDS: Final = (
    "content-type",
    "idempotency-key",
    "data-purpose",
    "content-digest",
    "signature",
    "signature-input",
)
DIGESTS: Final = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
RECEIPT_LABEL: Final = "receipt"
METHODS_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})


class SignatureProblem(ClearhouseError):
    """A request refused at the door; ``code`` is one of SPEC 4.2's signature codes."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class VerifiedPartner:
    """Who signed, and the evidence an entry keeps of the request that created it."""

    partner_id: str
    key_id: str
    label: str
    signature_input: str
    signature: str
    content_digest: str | None
    data_purpose: str | None
    request: RequestMessage
    """The request as verified (one signature), which the response's receipt covers."""
    signature_base: str
    """The RFC 9421 signature base the partner's key signed, kept on the entry it creates."""


def required_components(method: str, has_body: bool, purpose_bound: bool) -> set[str]:
    """The components a partner's signature must cover on this request (SPEC 4.1)."""
    required = {'"@method"', '"@target-uri"'}
    if has_body:
        required |= {'"content-type"', '"content-digest"'}
    if method == "POST":
        required.add('"idempotency-key"')
    if purpose_bound:
        required.add('"data-purpose"')
    return required


def _fields(scope: Scope) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope.get("headers", [])]


def _reject_repeated_and_unsafe(fields: Iterable[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for name, value in fields:
        lower = name.lower()
        if lower in SINGLE_FIELDS:
            if lower in seen:
                raise InvalidRequest(f"the {name} field appears more than once", field=name)
            seen.add(lower)
            if not (value.isascii() and value.isprintable()):  # " " to "~" only
                raise InvalidRequest(
                    f"the {name} field holds non-ASCII or control characters", field=name
                )


def _instant(seconds: int) -> datetime | None:
    """The UTC instant of a Unix time, or None when it lies beyond what a datetime holds."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _check_digest(header: str | None, body: bytes) -> None:
    if header is None:
        raise SignatureProblem("digest_mismatch", "Content-Digest is required with a body")
    try:
        members = parse_dictionary(header)
    except ValueError as exc:
        raise SignatureProblem("digest_mismatch", "Content-Digest is malformed") from exc
    usable = {name: value for name, value in members.items() if name in DIGESTS}
    if not usable:
        raise SignatureProblem("digest_mismatch", "Content-Digest needs sha-256 or sha-512")
    for name, (value, _params) in usable.items():
        if not isinstance(value, bytes) or not hmac.compare_digest(
            value, DIGESTS[name](body).digest()
        ):
            raise SignatureProblem("digest_mismatch", "Content-Digest does not match the body")


class SignatureVerifier:
    """The checks of one partner request; shared by the middleware of all partner routes."""

    def __init__(self, database: Database, public_base_url: str, window_s: int) -> None:
        self.keys = access.KeyRing(database)
        self.public_base_url = public_base_url
        self.window = timedelta(seconds=window_s)

    def target_uri(self, scope: Scope) -> str:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        uri = self.public_base_url + raw_path.decode("latin-1")
        return f"{uri}?{query.decode('latin-1')}" if query else uri

    async def verify(
        self, scope: Scope, fields: list[tuple[str, str]], body: bytes, purpose_bound: bool
    ) -> VerifiedPartner:
        headers = HeaderFields(fields)
        signature_input, signature = headers.get("signature-input"), headers.get("signature")
        if signature_input is None or signature is None:
            raise SignatureProblem(
                "missing_signature", "Signature and Signature-Input are required"
            )
        if max(len(signature_input), len(signature)) > SIGNATURE_FIELD_BYTES_MAX:
            raise SignatureProblem(
                "invalid_signature",
                f"Signature and Signature-Input are limited to {SIGNATURE_FIELD_BYTES_MAX} bytes",
            )
        try:
            inputs = parse_dictionary(signature_input)
            signatures = parse_dictionary(signature)
        except ValueError as exc:
            raise SignatureProblem(
                "invalid_signature", "the signature fields are malformed"
            ) from exc
        if not inputs or inputs.keys() != signatures.keys():
            raise SignatureProblem("invalid_signature", "Signature and Signature-Input disagree")
        if len(inputs) > SIGNATURE_LABELS_MAX:
            raise SignatureProblem(
                "invalid_signature", f"a request carries at most {SIGNATURE_LABELS_MAX} signatures"
            )
        method = str(scope.get("method", "GET"))
        needed = required_components(
            method, bool(body) or method in METHODS_WITH_BODY, purpose_bound
        )
        verified: list[tuple[VerifiedPartner, PartnerKey, str, datetime]] = []
        first_problem: SignatureProblem | None = None
        for label in inputs:
            try:
                verified.append(
                    await self._verify_label(
                        scope,
                        fields,
                        body,
                        label,
                        {"signature-input": inputs, "signature": signatures},
                        needed,
                    )
                )
            except SignatureProblem as problem:
                first_problem = first_problem or problem
        if not verified:
            assert first_problem is not None
            raise first_problem
        # A replay is final for the whole request: every signature that verifies spends its
        # nonce, and one nonce seen before refuses the request, whichever signature counts.
        try:
            valid = await self.keys.spend_nonces([signer[1:] for signer in verified])
        except access.NonceReplayed:
            raise SignatureProblem("replayed_request", "this nonce was used before") from None
        counted = [signer[0] for signer, ok in zip(verified, valid, strict=True) if ok]
        if not counted:
            raise SignatureProblem("unknown_key", "the key is unknown, revoked or not valid now")
        return counted[0]

    async def _verify_label(
        self,
        scope: Scope,
        fields: list[tuple[str, str]],
        body: bytes,
        label: str,
        members: dict[str, dict[str, Any]],
        needed: set[str],
    ) -> tuple[VerifiedPartner, PartnerKey, str, datetime]:
        """The partner, key, nonce and the nonce's expiry of one label that verifies."""
        components, params = members["signature-input"][label]
        signature_value, _ = members["signature"][label]
        if not isinstance(components, list) or not isinstance(signature_value, bytes):
            raise SignatureProblem("invalid_signature", f"signature {label} is malformed")
        unknown = set(params) - ALLOWED_PARAMETERS
        if unknown:
            raise SignatureProblem("invalid_signature", f"unknown parameters {sorted(unknown)}")
        missing = REQUIRED_PARAMETERS - set(params)
        if missing:
            raise SignatureProblem("invalid_signature", f"missing parameters {sorted(missing)}")
        created, key_id, nonce = params["created"], params["keyid"], params["nonce"]
        if not isinstance(created, int) or isinstance(created, bool):
            raise SignatureProblem("invalid_signature", "created must be an integer")
        if not isinstance(key_id, str) or not isinstance(nonce, str):
            raise SignatureProblem("invalid_signature", "keyid and nonce must be strings")
        if not NONCE_LENGTH_MIN <= len(nonce) <= NONCE_LENGTH_MAX:
            raise SignatureProblem(
                "invalid_signature", f"nonce must be {NONCE_LENGTH_MIN} to {NONCE_LENGTH_MAX} chars"
            )
        if "alg" in params and params["alg"] != "ed25519":
            raise SignatureProblem("invalid_signature", "alg must be ed25519")
        covered = {http_sf.ser(item) for item in components}
        absent = needed - covered
        if absent:
            raise SignatureProblem(
                "invalid_signature", f"the signature must cover {', '.join(sorted(absent))}"
            )
        now = datetime.now(UTC)
        created_at = _instant(created)
        if created_at is None or abs(now - created_at) > self.window:
            raise SignatureProblem("stale_signature", "created lies outside the accepted window")
        expires = params.get("expires")
        if expires is not None:
            expires_at = _instant(expires) if isinstance(expires, int) else None
            if expires_at is None or expires_at <= now:
                raise SignatureProblem("stale_signature", "the signature has expired")
        key = await self.keys.signing_key(key_id)
        if key is None:
            raise SignatureProblem("unknown_key", "the key is unknown, revoked or not valid now")
        digest_header = HeaderFields(fields).get("content-digest")
        if body or '"content-digest"' in covered:
            _check_digest(digest_header, body)
        single = HeaderFields(only_label(fields, label, members))
        message, signature_base = self._verified_message(
            scope, single, key_id, key.public_key, (components, params), signature_value
        )
        return (
            VerifiedPartner(
                partner_id=key.partner_id,
                key_id=key_id,
                label=label,
                signature_input=single.get("signature-input") or "",
                signature=single.get("signature") or "",
                content_digest=digest_header,
                data_purpose=HeaderFields(fields).get("data-purpose"),
                request=message,
                signature_base=signature_base,
            ),
            key,
            nonce,
            created_at + self.window + timedelta(seconds=1),
        )

    def _verified_message(
        self,
        scope: Scope,
        single: HeaderFields,
        key_id: str,
        public_key: bytes,
        signature_input: tuple[list[Any], dict[str, Any]],
        signature_value: bytes,
    ) -> tuple[RequestMessage, str]:
        """The request as signed, once its one signature verifies.

        ``@target-uri`` is the request's as sent (RFC 9421 section 2.2.2), but ASGI keeps no
        trace of an empty query: ``/issue?`` and ``/issue`` both arrive with no query string.
        So a request without a query verifies over either spelling; both name one resource.

        The signature base is written by ``crypto.signature_base`` for the shapes partners
        send, and built by ``http-message-signatures`` for any other.
        """
        method = str(scope.get("method", "GET"))
        uri = self.target_uri(scope)
        spellings = [uri, uri + "?"] if not scope.get("query_string") else [uri]
        components, params = signature_input
        for spelling in spellings:
            message = RequestMessage(method, spelling, single)
            base = request_signature_base(method, spelling, single.fields, components, params)
            if base is not None:
                if ed25519_verify(public_key, signature_value, base.encode()):
                    return message, base
                continue
            try:
                covered = verify_signature(message, key_id, public_key, skew=self.window)
            except InvalidSignature:
                continue
            return message, signature_base_of(covered)
        raise SignatureProblem("invalid_signature", "the signature does not verify")


class PartnerSignatureMiddleware(ASGIMiddleware):
    """Verifies the partner's signature before the handler runs; signs what it answers."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "unsigned"

    def __init__(self, body_max_bytes: int) -> None:
        self.body_max_bytes = body_max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        app_state = scope["litestar_app"].state
        verifier: SignatureVerifier = app_state.signature_verifier
        coalition_key: CoalitionKey = app_state.coalition_key
        fields = _fields(scope)
        declared = HeaderFields(fields).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.body_max_bytes:
            raise SignatureProblem(
                "payload_too_large", f"bodies are limited to {self.body_max_bytes} bytes"
            )
        body = await read_body(receive, self.body_max_bytes)
        _reject_repeated_and_unsafe(fields)
        if body or scope.get("method") in METHODS_WITH_BODY:
            content_type = (HeaderFields(fields).get("content-type") or "").split(";")[0].strip()
            if content_type.lower() != "application/json":
                raise SignatureProblem(
                    "unsupported_media_type", "the body must be application/json"
                )
        purpose_bound = bool(scope["route_handler"].opt.get("purpose_bound", True))
        try:
            partner = await verifier.verify(scope, fields, body, purpose_bound)
        except SignatureProblem as problem:
            SIGNATURE_FAILURES.labels(problem.code).inc()
            raise
        scope.setdefault("state", {})["partner"] = partner

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def sign_and_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            response_body = b"".join(chunks)
            await send(self._signed_start(start, response_body, partner, coalition_key))
            await send(
                HTTPResponseBodyEvent(
                    type="http.response.body", body=response_body, more_body=False
                )
            )

        await next_app(scope, replaying(body, receive), sign_and_send)

    @staticmethod
    def _signed_start(
        start: dict[str, Any],
        body: bytes,
        partner: VerifiedPartner,
        coalition_key: CoalitionKey,
    ) -> HTTPResponseStartEvent:
        status = int(start["status"])
        fields = sign_receipt(
            ((n.decode("latin-1"), v.decode("latin-1")) for n, v in start.get("headers", [])),
            status=status,
            body=body,
            request_label=partner.label,
            # The one member of the request's Signature as verified: "<label>=" cut off.
            request_signature=partner.signature[len(partner.label) + 1 :],
            key_id=coalition_key.key_id,
            private_key=coalition_key.private_key,
            created=int(time.time()),
            label=RECEIPT_LABEL,
        )
        headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in fields]
        return HTTPResponseStartEvent(type="http.response.start", status=status, headers=headers)


def content_digest_of(body: bytes) -> str:
    return content_digest(body)
