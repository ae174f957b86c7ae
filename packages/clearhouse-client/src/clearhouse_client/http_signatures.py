"""RFC 9421 HTTP Message Signatures with Ed25519, through the PyPI package
``http-message-signatures``: the one implementation that partners sign with and that the
Clearhouse server verifies and signs its receipts with.

The package builds signature bases, signs and verifies; this module only adapts a message (a
method, an absolute URL, header field lines, a body) to its message interface and fixes the
algorithm to Ed25519. Which components a signature must cover, how fresh it must be and which
nonces were seen before are the verifier's policy, not this module's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

Field = tuple[str, str]


class HeaderFields:
    """Header field lines in wire order, with the mapping operations the package needs."""

    def __init__(self, fields: Iterable[Field] = ()) -> None:
        self.fields: list[Field] = list(fields)

    def items(self) -> list[Field]:
        return list(self.fields)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self.fields))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self.fields)

    def __setitem__(self, name: str, value: str) -> None:
        self.__delitem__(name)
        self.fields.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.fields = [(n, v) for n, v in self.fields if n.lower() != name.lower()]

    def get(self, name: str) -> str | None:
        values = [v for n, v in self.fields if n.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class RequestMessage:
    method: str
    url: str
    headers: HeaderFields = field(default_factory=HeaderFields)


@dataclass
class ResponseMessage:
    status_code: int
    headers: HeaderFields
    request: RequestMessage


class _OneKey(HTTPSignatureKeyResolver):
    """The one public key a verification may use."""

    def __init__(self, key_id: str, public_key: Ed25519PublicKey) -> None:
        self.key_id = key_id
        self.public_key = public_key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self.public_key if key_id == self.key_id else None


def parse_dictionary(value: str) -> dict[str, Any]:
    """A Structured Field dictionary (RFC 9651); raises ValueError when malformed."""
    try:
        parsed = http_sf.parse(value.encode(), tltype="dictionary")
    except Exception as exc:  # the parser raises its own error types
        raise ValueError(str(exc)) from exc
    if not isinstance(parsed, dict):
        raise ValueError("not a dictionary")
    return parsed


def verify_signature(
    message: RequestMessage | ResponseMessage,
    key_id: str,
    public_key: bytes,
    *,
    skew: timedelta = timedelta(seconds=5),
) -> dict[str, str]:
    """Verify the one signature in ``message`` with ``public_key``; return its covered components.

    Raises ``InvalidSignature`` when it does not verify. Freshness beyond ``skew`` and
    replays are the caller's policy.
    """
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=_OneKey(key_id, Ed25519PublicKey.from_public_bytes(public_key)),
    )
    verifier.max_clock_skew = skew
    results = verifier.verify(message, max_age=None)
    return dict(results[0].covered_components)


def sign_message(
    message: RequestMessage | ResponseMessage,
    *,
    key_id: str,
    private_key: Ed25519PrivateKey,
    covered: Sequence[str],
    label: str,
    body: bytes | None = None,
    nonce: str | None = None,
    created: datetime | None = None,
) -> None:
    """Sign ``message`` in place: Signature-Input, Signature, and Content-Digest of ``body``."""
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519)
    prepared = signer.prepare(
        message,
        key_id=key_id,
        label=label,
        nonce=nonce,
        created=created,
        covered_component_ids=tuple(covered),
        body=body,
    )
    # The package builds the signature base (prepare); writing the two fields ourselves spares
    # apply() rebuilding that same base to compare it, which halves the cost of a signature.
    signature = base64.b64encode(private_key.sign(prepared.signature_base)).decode()
    message.headers["Signature-Input"] = f"{prepared.label}={prepared.signature_params}"
    message.headers["Signature"] = f"{prepared.label}=:{signature}:"


__all__ = [
    "Field",
    "HeaderFields",
    "InvalidSignature",
    "RequestMessage",
    "ResponseMessage",
    "parse_dictionary",
    "sign_message",
    "verify_signature",
]
