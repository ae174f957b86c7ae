"""Idempotency: one request per ``(partner, Idempotency-Key)``, recognised by its fingerprint.

A retry is a replay only when every field matches; otherwise the caller learns which field
differs, so a client bug shows itself at once instead of as a silent second entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

import msgspec

from clearhouse.domain.errors import InvalidRequest

IDEMPOTENCY_KEY_LENGTH_MAX: Final = 255


def validate_idempotency_key(key: object) -> str:
    """1 to 255 printable ASCII characters (SPEC 4.3)."""
    if not isinstance(key, str) or not 1 <= len(key) <= IDEMPOTENCY_KEY_LENGTH_MAX:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} characters",
            field="Idempotency-Key",
        )
    if not all(" " <= ch <= "~" for ch in key):
        raise InvalidRequest("Idempotency-Key must be printable ASCII", field="Idempotency-Key")
    return key


def request_fingerprint(operation: str, fields: Mapping[str, object]) -> bytes:
    """SHA-256 of the operation and its fields, canonically encoded (keys sorted)."""
    body = msgspec.json.encode({"operation": operation, "fields": fields}, order="sorted")
    return hashlib.sha256(body).digest()


def differing_fields(first: Mapping[str, object], second: Mapping[str, object]) -> list[str]:
    """The names of the fields in which two requests differ, in sorted order."""
    return sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
