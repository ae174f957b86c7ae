"""Webhook signatures as a receiver checks them: ``v1a`` with an independent Ed25519 (PyNaCl),
``v1`` with the ``standardwebhooks`` package, and what must fail."""

from __future__ import annotations

import base64
import time

import nacl.exceptions
import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clearhouse.crypto.aead import DecryptionFailed
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.crypto.webhooks import (
    WebhookSignatureInvalid,
    new_secret,
    open_secret,
    seal_secret,
    secret_of,
    secret_text,
    signature_headers,
    signed_content,
    verify_v1a,
)

EVENT_ID = "evt_" + "0123456789abcdef" * 2
BODY = (
    b'{"data":{"entry_id":"e1","points":5},'
    b'"timestamp":"2026-12-03T09:00:00.000000Z","type":"entry.recorded"}'
)
MASTER_KEY = bytes(range(32))


def a_key() -> CoalitionKey:
    return CoalitionKey.of(Ed25519PrivateKey.generate())


def v1a_of(headers: dict[str, str]) -> bytes:
    (signature,) = [s for s in headers["webhook-signature"].split(" ") if s.startswith("v1a,")]
    return base64.b64decode(signature.removeprefix("v1a,"))


def test_v1a_verifies_with_pynacl_over_id_timestamp_and_body() -> None:
    key = a_key()
    now = int(time.time())
    headers = signature_headers(EVENT_ID, now, BODY, key)
    assert headers["webhook-id"] == EVENT_ID
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1a,")
    assert " " not in headers["webhook-signature"]  # no secret: Ed25519 only
    content = f"{EVENT_ID}.{now}.".encode() + BODY
    assert signed_content(EVENT_ID, now, BODY) == content
    nacl.signing.VerifyKey(key.public_key).verify(content, v1a_of(headers))
    verify_v1a(key.public_key, headers, BODY, now=now)


def test_v1_verifies_with_standardwebhooks_beside_v1a() -> None:
    key = a_key()
    secret = new_secret()
    text = secret_text(secret)
    assert text.startswith("whsec_")
    assert secret_of(text) == secret
    headers = signature_headers(EVENT_ID, int(time.time()), BODY, key, secret)
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1a", "v1"]
    assert Webhook(text).verify(BODY, headers) == {
        "data": {"entry_id": "e1", "points": 5},
        "timestamp": "2026-12-03T09:00:00.000000Z",
        "type": "entry.recorded",
    }
    verify_v1a(key.public_key, headers, BODY, now=int(time.time()))


@pytest.mark.parametrize("at", range(0, len(BODY), 17))
def test_a_one_byte_change_of_the_body_fails_every_check(at: int) -> None:
    key = a_key()
    secret = new_secret()
    now = int(time.time())
    headers = signature_headers(EVENT_ID, now, BODY, key, secret)
    changed = BODY[:at] + bytes([BODY[at] ^ 0x01]) + BODY[at + 1 :]
    with pytest.raises(WebhookSignatureInvalid, match="no v1a signature verifies"):
        verify_v1a(key.public_key, headers, changed, now=now)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(key.public_key).verify(
            signed_content(EVENT_ID, now, changed), v1a_of(headers)
        )
    with pytest.raises((WebhookVerificationError, UnicodeDecodeError)):
        Webhook(secret_text(secret)).verify(changed, headers)


def test_a_changed_id_or_timestamp_fails() -> None:
    key = a_key()
    now = int(time.time())
    headers = signature_headers(EVENT_ID, now, BODY, key)
    for name, value in [("webhook-id", "evt_" + "f" * 32), ("webhook-timestamp", str(now - 1))]:
        with pytest.raises(WebhookSignatureInvalid):
            verify_v1a(key.public_key, {**headers, name: value}, BODY, now=now)


def test_a_stale_timestamp_fails_though_the_signature_is_good() -> None:
    key = a_key()
    secret = new_secret()
    sent = int(time.time()) - 301
    headers = signature_headers(EVENT_ID, sent, BODY, key, secret)
    nacl.signing.VerifyKey(key.public_key).verify(
        signed_content(EVENT_ID, sent, BODY), v1a_of(headers)
    )  # the signature itself is fine: only its age refuses it
    with pytest.raises(WebhookSignatureInvalid, match="more than 300 s off"):
        verify_v1a(key.public_key, headers, BODY, now=sent + 301)
    with pytest.raises(WebhookSignatureInvalid, match="more than 300 s off"):
        verify_v1a(key.public_key, headers, BODY, now=sent - 301)
    verify_v1a(key.public_key, headers, BODY, now=sent + 300)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret_text(secret)).verify(BODY, headers)


def test_a_rotated_key_fails_what_the_new_key_signed_and_the_other_way_round() -> None:
    old, new = a_key(), a_key()
    now = int(time.time())
    headers = signature_headers(EVENT_ID, now, BODY, new)
    verify_v1a(new.public_key, headers, BODY, now=now)
    with pytest.raises(WebhookSignatureInvalid):
        verify_v1a(old.public_key, headers, BODY, now=now)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(old.public_key).verify(
            signed_content(EVENT_ID, now, BODY), v1a_of(headers)
        )


def test_missing_or_malformed_headers_fail() -> None:
    key = a_key()
    now = int(time.time())
    headers = signature_headers(EVENT_ID, now, BODY, key)
    for name in headers:
        with pytest.raises(WebhookSignatureInvalid, match="missing"):
            verify_v1a(
                key.public_key, {k: v for k, v in headers.items() if k != name}, BODY, now=now
            )
    with pytest.raises(WebhookSignatureInvalid, match="Unix seconds"):
        verify_v1a(key.public_key, {**headers, "webhook-timestamp": "1e9"}, BODY, now=now)
    garbled = {**headers, "webhook-signature": "v1a,not-base64!! v1,AAAA"}
    with pytest.raises(WebhookSignatureInvalid, match="no v1a signature"):
        verify_v1a(key.public_key, garbled, BODY, now=now)
    shouted = {name.upper(): value for name, value in headers.items()}
    verify_v1a(key.public_key, shouted, BODY, now=now)


def test_a_sealed_secret_opens_only_for_its_endpoint_under_its_master_key() -> None:
    secret = new_secret()
    sealed = seal_secret(MASTER_KEY, "we_" + "1" * 32, secret)
    assert secret not in sealed
    assert open_secret(MASTER_KEY, "we_" + "1" * 32, sealed) == secret
    with pytest.raises(DecryptionFailed):
        open_secret(MASTER_KEY, "we_" + "2" * 32, sealed)
    with pytest.raises(DecryptionFailed):
        open_secret(bytes(32), "we_" + "1" * 32, sealed)
    with pytest.raises(DecryptionFailed):
        open_secret(MASTER_KEY, "we_" + "1" * 32, sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_a_secret_without_its_prefix_or_in_bad_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="starts with whsec_"):
        secret_of(base64.b64encode(new_secret()).decode())
    with pytest.raises(ValueError, match="base64"):
        secret_of("whsec_not*base64")
