"""Canonical JSON (RFC 8785, JCS) of entries and statements.

Clearhouse's documents hold only ASCII keys, strings, integers, booleans, null, lists and
objects (amounts are decimal strings), so JCS comes down to: keys sorted, no whitespace,
strings escaped as JSON requires. msgspec's encoder with sorted keys writes exactly those bytes
(a property test compares it with the reference package ``rfc8785`` on every shape we write).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """The RFC 8785 bytes of a document made of JSON types (no floats)."""
    return _encoder.encode(document)


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


OPERATOR_KINDS: Final = frozenset({"expiry", "adjustment"})


def evidence_of(kind: str, signature: str | None) -> str:
    """What vouches for an entry: its partner's signature, or why there is none.

    ``partner_signature``: a partner's signed request made it (``signature_base`` holds what the
    key signed); ``operator``: an expiry or adjustment the coalition's operator made;
    ``settlement``: a money entry of a settlement; ``unsigned``: a partner entry recorded
    without a signed request (only by the service itself, never through the API).
    """
    if signature is not None:
        return "partner_signature"
    if kind in OPERATOR_KINDS:
        return "operator"
    if kind == "settlement":
        return "settlement"
    return "unsigned"


def canonical_entry(
    *,
    entry_id: UUID,
    kind: str,
    partner_id: str | None,
    member_id: str | None,
    points: int,
    postings: Sequence[tuple[str, str, int | Decimal]],
    contract_version: int | None,
    occurred_at: datetime | None,
    recorded_at: datetime,
    reference: str | None,
    reversal_of: UUID | None,
    signature_input: str | None,
    signature: str | None,
    content_digest: str | None,
    signature_base: str | None,
    hold_id: UUID | None = None,
) -> bytes:
    """What never changes of an entry, as canonical JSON: the leaf of its period's tree.

    Neither metadata (removed by retention) nor personal data (erased) is part of it, so the
    roots verify after both. With the partner's public key, ``signature_base`` and ``signature``
    verify the partner's signature from this line alone (``evidence`` says when there is none).
    A capture's redeem names its hold (``hold_id``, on captures only): its request went to
    ``/v1/holds/{hold_id}/capture``.
    """
    line: dict[str, object] = {
        "entry_id": str(entry_id),
        "kind": kind,
        "partner_id": partner_id,
        "member_id": member_id,
        "points": points,
        "postings": [
            {
                "account": account,
                "asset": asset,
                "amount": int(amount) if asset == "PTS" else str(amount),
            }
            for account, asset, amount in sorted(postings, key=lambda p: (p[0], p[1]))
        ],
        "contract_version": contract_version,
        "occurred_at": None if occurred_at is None else utc_text(occurred_at),
        "recorded_at": utc_text(recorded_at),
        "reference": reference,
        "reversal_of": None if reversal_of is None else str(reversal_of),
        "signature_input": signature_input,
        "signature": signature,
        "content_digest": content_digest,
        "signature_base": signature_base,
        "evidence": evidence_of(kind, signature),
    }
    if hold_id is not None:
        line["hold_id"] = str(hold_id)
    return canonical_json(line)
