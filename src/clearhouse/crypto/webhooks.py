"""Signatures of outgoing webhooks, per the Standard Webhooks specification.

Every attempt carries three headers: ``webhook-id`` (the event's id, the same on every retry and
replay, so a receiver deduplicates by it), ``webhook-timestamp`` (the attempt's Unix seconds)
and ``webhook-signature``, a space-separated list of signatures over the signed content
``{webhook-id}.{webhook-timestamp}.{body}``, the body being the exact bytes sent:

- ``v1a,<base64 Ed25519 signature>`` with the coalition's webhook key, always. Its public key is
  published at ``GET /v1/keys`` (``use: ["webhooks"]``), so a receiver needs no shared secret and
  nothing but an Ed25519 library (``verify_v1a`` is that check, for the docs and the tests);
- ``v1,<base64 HMAC-SHA256>`` too, when the endpoint asked for a secret: ``whsec_`` followed by
  the secret's bytes in base64, shown to the partner once. Clearhouse keeps it sealed with
  AES-256-GCM under the master key, the endpoint's id as associated data (``seal_secret``), so a
  sealed secret copied onto another endpoint does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The layout of members' sealed data: nonce ‖ AES-GCM(key, plaintext, associated data).
from clearhouse.crypto.aead import _open, _seal
from clearhouse.crypto.ed25519 import CoalitionKey

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the prefix the specification names, not a secret)
SECRET_BYTES: Final = 32
"""A new HMAC secret's length; the specification asks for 24 to 64 bytes."""
TOLERANCE_S: Final = 300
"""How far a ``webhook-timestamp`` may lie from the receiver's clock, the specification's
default of five minutes."""


class WebhookSignatureInvalid(ValueError):
    """The headers do not prove that Clearhouse sent this body at that time."""


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """What every signature of an attempt covers."""
    return f"{webhook_id}.{timestamp}.".encode() + body


def new_secret() -> bytes:
    return os.urandom(SECRET_BYTES)


def secret_text(secret: bytes) -> str:
    """The secret as the partner is shown it once: ``whsec_`` and base64."""
    return SECRET_PREFIX + base64.b64encode(secret).decode()


def secret_of(text: str) -> bytes:
    """The bytes of a ``whsec_…`` secret."""
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        return base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is base64 after its prefix") from exc


def _secret_aad(endpoint_id: str) -> bytes:
    return b"clearhouse/webhook-secret/" + endpoint_id.encode()


def seal_secret(master_key: bytes, endpoint_id: str, secret: bytes) -> bytes:
    """The endpoint's HMAC secret as ``webhook_endpoints.secret`` keeps it."""
    return _seal(master_key, secret, _secret_aad(endpoint_id))


def open_secret(master_key: bytes, endpoint_id: str, sealed: bytes) -> bytes:
    """The HMAC secret sealed for this endpoint (``DecryptionFailed`` for any other)."""
    return _open(master_key, sealed, _secret_aad(endpoint_id))


def signature_headers(
    webhook_id: str,
    timestamp: int,
    body: bytes,
    key: CoalitionKey,
    secret: bytes | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    content = signed_content(webhook_id, timestamp, body)
    signatures = [f"v1a,{base64.b64encode(key.sign(content)).decode()}"]
    if secret is not None:
        mac = hmac.new(secret, content, hashlib.sha256).digest()
        signatures.append(f"v1,{base64.b64encode(mac).decode()}")
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def verify_v1a(
    public_key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Check an attempt as a receiver does; raises ``WebhookSignatureInvalid`` with the reason.

    ``headers`` may be spelt in any case; ``now`` is the receiver's Unix seconds.
    """
    fields = {name.lower(): value for name, value in headers.items()}
    webhook_id = fields.get("webhook-id")
    stamp = fields.get("webhook-timestamp")
    signatures = fields.get("webhook-signature")
    if not (webhook_id and stamp and signatures):
        raise WebhookSignatureInvalid("webhook-id, webhook-timestamp or webhook-signature missing")
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookSignatureInvalid("webhook-timestamp is not Unix seconds")
    if abs(now - int(stamp)) > tolerance_s:
        raise WebhookSignatureInvalid(f"webhook-timestamp is more than {tolerance_s} s off")
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    content = signed_content(webhook_id, int(stamp), body)
    for signature in signatures.split(" "):
        version, _, encoded = signature.partition(",")
        if version != "v1a":
            continue
        try:
            verifier.verify(base64.b64decode(encoded, validate=True), content)
        except (InvalidSignature, binascii.Error):
            continue
        return
    raise WebhookSignatureInvalid("no v1a signature verifies with this key")
