"""The partner's side of every exchange: each request signed, each answer's receipt checked.

A request is signed under the label ``sig1`` with a fresh nonce and ``created``, covering
``@method``, ``@target-uri`` and, as the request has them, ``content-type`` and
``content-digest`` (RFC 9530, of the body), ``idempotency-key`` and ``data-purpose``. The answer
must carry the coalition's receipt: one signature over the status, the body's digest and the
request's own ``sig1`` signature, by a coalition key the client knows. A refusal given before
the request's signature was accepted has no receipt to carry; it is raised as its problem.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse_client.errors import ResponseNotSigned, UnknownReceiptKey, problem_of
from clearhouse_client.http_signatures import (
    HeaderFields,
    InvalidSignature,
    RequestMessage,
    ResponseMessage,
    parse_dictionary,
    sign_message,
    verify_signature,
)
from clearhouse_client.keys import load_private_key

REQUEST_LABEL: Final = "sig1"


class Signer:
    """Signs requests and checks receipts; shared by the sync and async clients."""

    def __init__(
        self,
        key_id: str,
        private_key: Ed25519PrivateKey | bytes,
        coalition_keys: Mapping[str, bytes] | None,
    ) -> None:
        self.key_id = key_id
        self.private_key = (
            private_key
            if isinstance(private_key, Ed25519PrivateKey)
            else load_private_key(private_key)
        )
        self.coalition_keys: dict[str, bytes] = dict(coalition_keys or {})
        self.pinned = coalition_keys is not None
        """Pinned keys are the only ones trusted; fetched ones are fetched again when a receipt
        names a key they lack (the coalition rotated its key)."""

    def sign(self, request: httpx.Request) -> None:
        body = request.content
        covered = ["@method", "@target-uri"]
        if body or request.method in {"POST", "PUT", "PATCH"}:
            covered += ["content-type", "content-digest"]
        if "idempotency-key" in request.headers:
            covered.append("idempotency-key")
        if "data-purpose" in request.headers:
            covered.append("data-purpose")
        for name in ("signature", "signature-input", "content-digest"):
            request.headers.pop(name, None)
        message = RequestMessage(
            request.method, str(request.url), HeaderFields(request.headers.multi_items())
        )
        sign_message(
            message,
            key_id=self.key_id,
            private_key=self.private_key,
            covered=covered,
            label=REQUEST_LABEL,
            body=body if "content-digest" in covered else None,
            nonce=secrets.token_urlsafe(24),
            created=datetime.now(UTC),
        )
        for name in ("Signature-Input", "Signature", "Content-Digest"):
            value = message.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def answer(self, response: httpx.Response) -> None:
        """Raise the problem of an answer (unsigned refusals first), or check its receipt."""
        if response.status_code >= 400 and "signature" not in response.headers:
            raise problem_of(response)
        self.check_receipt(response)
        if response.status_code >= 400:
            raise problem_of(response)

    def check_receipt(self, response: httpx.Response) -> None:
        """Verify the coalition's signature over status, body digest and our signature."""
        fields = HeaderFields(response.headers.multi_items())
        signature_input = fields.get("signature-input")
        digest = fields.get("content-digest")
        if signature_input is None or digest is None:
            raise ResponseNotSigned("the response carries no receipt signature")
        try:
            members = parse_dictionary(signature_input)
            parsed_digest = parse_dictionary(digest)
        except ValueError as exc:
            raise ResponseNotSigned("the receipt's fields are malformed") from exc
        if len(members) != 1:
            raise ResponseNotSigned("the receipt must hold exactly one signature")
        (_, params) = next(iter(members.values()))
        key_id = str(params.get("keyid"))
        public_key = self.coalition_keys.get(key_id)
        if public_key is None:
            raise UnknownReceiptKey(f"the receipt is signed by an unknown key {key_id!r}")
        expected = hashlib.sha256(response.content).digest()
        if "sha-256" not in parsed_digest:
            raise ResponseNotSigned("the receipt's Content-Digest lacks sha-256")
        if not hmac.compare_digest(parsed_digest["sha-256"][0], expected):
            raise ResponseNotSigned("the response body does not match its Content-Digest")
        request = response.request
        message = ResponseMessage(
            response.status_code,
            fields,
            RequestMessage(
                request.method, str(request.url), HeaderFields(request.headers.multi_items())
            ),
        )
        try:
            covered = verify_signature(message, key_id, public_key)
        except InvalidSignature as exc:
            raise ResponseNotSigned(f"the receipt does not verify: {exc}") from exc
        if f'"signature";req;key="{REQUEST_LABEL}"' not in covered:
            raise ResponseNotSigned("the receipt does not cover the request's signature")
