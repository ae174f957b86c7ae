"""The RFC 9421 signature bases of partner requests and of receipts, written directly.

``http-message-signatures`` builds a signature base through general machinery: a component
resolver per message, every header field line normalised into a case-insensitive mapping, the
URL parsed, each covered component parsed into items and serialised back. On a signed request
that costs more than the Ed25519 check itself. Partners' requests and the coalition's receipts
use a small part of RFC 9421: ``@method``, ``@target-uri`` and plain header fields (section
2.1, no parameters) on a request; ``@status``, ``content-digest`` and one member of the
request's ``Signature`` (``;req;key=``) on a response. For those shapes this module writes the
base (section 2.5) itself; for any other shape ``request_signature_base`` answers None and the
caller asks the package. The package stays the definition: a property test
(``tests/crypto/test_signature_base.py``) compares the two, byte for byte, on every request
shape the server accepts and on every receipt, as the JCS fast path is held to ``rfc8785``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.crypto.http_signatures import content_digest
from clearhouse_client.http_signatures import Field

_PCT: Final = r"%[0-9A-Fa-f]{2}"
_CHARS: Final = r"A-Za-z0-9._~\-!$&'()*+,;="
_TARGET_URI: Final = re.compile(
    rf"[A-Za-z][A-Za-z0-9+.\-]*://[{_CHARS}]+(?::[0-9]*)?"
    rf"/(?:[{_CHARS}:@/]|{_PCT})*(?:\?(?:[{_CHARS}:@/?]|{_PCT})*)?"
)
"""An absolute URL whose ``@target-uri`` is its own spelling (RFC 9421 section 2.2.2): a
registered-name host, a path, no user information and no fragment. Anything else (an IP
literal, a percent-encoded host, no path) is left to the package."""
_METHOD: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]+")
"""An HTTP method token in upper case, as RFC 9421 section 2.2.1 signs it."""
_FIELD_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
"""A field name in lower case: a covered header field without parameters."""
_PARAMETER_TYPES: Final = {
    "alg": str,
    "created": int,
    "expires": int,
    "keyid": str,
    "nonce": str,
    "tag": str,
}
"""The signature parameters of RFC 9421 section 2.3 and the type each must have."""
RECEIPT_COMPONENTS: Final = ("@status", "content-digest")
"""What a receipt covers before the request's signature (``"signature";req;key=<label>``)."""


def inner_list_text(components: Sequence[tuple[Any, Mapping[str, Any]]], params: Any) -> str:
    """The serialisation of a parsed Inner List, as ``@signature-params`` carries it."""
    member: Any = (list(components), params)
    return str(http_sf.ser({"x": member}))[2:]


def _field_values(fields: Iterable[Field]) -> dict[str, list[str]]:
    """Each field's lines by lower-case name, trimmed of the optional whitespace around them."""
    values: dict[str, list[str]] = {}
    for name, value in fields:
        values.setdefault(name.lower(), []).append(value.strip(" \t"))
    return values


def _clean(value: str) -> bool:
    """ASCII without control characters other than a tab (RFC 9421 section 2.5)."""
    return value.isascii() and value.replace("\t", " ").isprintable()


def request_signature_base(
    method: str,
    url: str,
    fields: Iterable[Field],
    components: Sequence[tuple[Any, Mapping[str, Any]]],
    params: Mapping[str, Any],
) -> str | None:
    """The signature base of a request's signature over ``components`` (as ``http_sf`` parsed
    them from ``Signature-Input``) with ``params``; None when a component, a parameter, the
    method, the URL or a covered value is of a shape this module leaves to the package."""
    # The package checks the method and the URL of every request, covered or not.
    if not _METHOD.fullmatch(method) or not _TARGET_URI.fullmatch(url):
        return None
    for name, value in params.items():
        expected = _PARAMETER_TYPES.get(name)
        if expected is None or type(value) is not expected:
            return None
    values: dict[str, list[str]] | None = None
    lines: list[str] = []
    seen: set[str] = set()
    for component, component_params in components:
        if type(component) is not str or component_params or component in seen:
            return None
        seen.add(component)
        if component == "@method":
            value = method
        elif component == "@target-uri":
            value = url
        elif _FIELD_NAME.fullmatch(component):
            if values is None:
                values = _field_values(fields)
            found = values.get(component)
            if found is None:
                return None
            value = ", ".join(found)
            if not _clean(value):
                return None
        else:
            return None
        lines.append(f'"{component}": {value}')
    lines.append(f'"@signature-params": {inner_list_text(components, params)}')
    return "\n".join(lines)


def receipt_signature_base(
    status: int, digest: str, request_label: str, request_signature: str, params_text: str
) -> str:
    """The base of a receipt: the status, the answer's digest and the member of the request's
    ``Signature`` under ``request_label`` (its serialisation, ``:…:`` and any parameters)."""
    return (
        f'"@status": {status}\n'
        f'"content-digest": {digest}\n'
        f'"signature";req;key="{request_label}": {request_signature}\n'
        f'"@signature-params": {params_text}'
    )


def sign_receipt(
    fields: Iterable[Field],
    *,
    status: int,
    body: bytes,
    request_label: str,
    request_signature: str,
    key_id: str,
    private_key: Ed25519PrivateKey,
    created: int,
    label: str,
) -> list[Field]:
    """The response's header fields with its receipt: ``fields`` less any ``Content-Digest``,
    ``Signature-Input`` and ``Signature``, then those three, in the order and spelling that the
    package's signer writes them.

    ``request_signature`` is the request's ``Signature`` member under ``request_label`` as
    serialised (``:…:``, parameters included); ``created`` is a Unix time.
    """
    digest = content_digest(body)
    params_text = (
        f'("@status" "content-digest" "signature";req;key="{request_label}")'
        f';created={created};keyid={http_sf.ser(key_id)};alg="ed25519"'
    )
    base = receipt_signature_base(status, digest, request_label, request_signature, params_text)
    signature = base64.b64encode(private_key.sign(base.encode())).decode()
    replaced = {"content-digest", "signature-input", "signature"}
    return [
        *((n, v) for n, v in fields if n.lower() not in replaced),
        ("Content-Digest", digest),
        ("Signature-Input", f"{label}={params_text}"),
        ("Signature", f"{label}=:{signature}:"),
    ]
