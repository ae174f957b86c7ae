"""RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530 digests, through the PyPI package
``http-message-signatures``.

The package builds signature bases, signs and verifies; this module only adapts Clearhouse's
messages (a method, an absolute URL, header field lines, a body) to its message interface and
fixes the algorithm to Ed25519. The policy of which components a partner must cover, the
freshness window and the nonce store live in ``clearhouse.web.signatures``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
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

from clearhouse.crypto.ed25519 import verify as ed25519_verify

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
