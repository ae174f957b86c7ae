"""RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530 digests as the server uses them.

Signing and verifying a message is the partner client's own code
(``clearhouse_client.http_signatures``, over the PyPI package ``http-message-signatures``): the
server verifies partners and signs its receipts with the implementation partners sign with, and
re-exports it here. For the shapes partners send and for receipts, the signature base is
written by ``clearhouse.crypto.signature_base`` instead, which a property test holds byte-equal
to the package's. What only the server needs is this module's: the
``Content-Digest`` of a body, one label cut out of several signatures, the signature base of a
verified signature, and the check of the partner signature an entry keeps. The policy of which
components a partner must cover, the freshness window and the nonce store live in
``clearhouse.web.signatures``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import http_sf

from clearhouse.crypto.ed25519 import verify as ed25519_verify
from clearhouse_client.http_signatures import (
    Field,
    HeaderFields,
    InvalidSignature,
    RequestMessage,
    ResponseMessage,
    parse_dictionary,
    sign_message,
    verify_signature,
)


def signature_base_of(covered: dict[str, str]) -> str:
    """The RFC 9421 signature base (section 2.5) of a verified signature's covered components,
    ``"@signature-params"`` last, as ``verify_signature`` returns them."""
    return "\n".join(f"{name}: {value}" for name, value in covered.items())


@dataclass(frozen=True, slots=True)
class EntrySignature:
    """A partner's signature as an entry keeps it, checked against its signature base."""

    key_id: str | None
    created: int | None
    problems: list[str]


def check_entry_signature(
    signature_input: str,
    signature: str,
    signature_base: str,
    public_key_of: Callable[[str], bytes | None],
) -> EntrySignature:
    """Does ``signature`` (one label) verify over ``signature_base`` with the key it names, and
    is the base's ``@signature-params`` line the ``signature_input`` that was sent?

    ``public_key_of`` gives the public key of a key id, or None for a key that may not sign.
    """
    try:
        inputs, signatures = parse_dictionary(signature_input), parse_dictionary(signature)
    except ValueError:
        return EntrySignature(None, None, ["its signature fields are malformed"])
    if len(inputs) != 1 or inputs.keys() != signatures.keys():
        return EntrySignature(None, None, ["its signature fields do not hold one signature"])
    ((label, (components, params)),) = inputs.items()
    key_id = params.get("keyid") if isinstance(params.get("keyid"), str) else None
    created = params.get("created") if isinstance(params.get("created"), int) else None
    problems = []
    sent = http_sf.ser({label: (components, params)})[len(label) + 1 :]
    if signature_base.rsplit("\n", 1)[-1] != f'"@signature-params": {sent}':
        problems.append("its signature base was not made for its Signature-Input")
    value, _ = signatures[label]
    public_key = None if key_id is None else public_key_of(key_id)
    if public_key is None:
        problems.append(f"its signature names a key that is not the partner's: {key_id}")
    elif not isinstance(value, bytes) or not ed25519_verify(
        public_key, value, signature_base.encode()
    ):
        problems.append(f"its partner signature does not verify with key {key_id}")
    return EntrySignature(key_id, created, problems)


def content_digest(body: bytes) -> str:
    """The ``Content-Digest`` field value of ``body`` (SHA-256)."""
    return http_sf.ser({"sha-256": (hashlib.sha256(body).digest(), {})})


def only_label(
    fields: Sequence[Field], label: str, members: dict[str, dict[str, Any]]
) -> list[Field]:
    """The fields with ``Signature-Input`` and ``Signature`` cut down to one label's members."""
    kept = [(n, v) for n, v in fields if n.lower() not in {"signature-input", "signature"}]
    return [
        *kept,
        ("Signature-Input", http_sf.ser({label: members["signature-input"][label]})),
        ("Signature", http_sf.ser({label: members["signature"][label]})),
    ]


__all__ = [
    "EntrySignature",
    "HeaderFields",
    "InvalidSignature",
    "RequestMessage",
    "ResponseMessage",
    "check_entry_signature",
    "content_digest",
    "only_label",
    "parse_dictionary",
    "sign_message",
    "signature_base_of",
    "verify_signature",
]
