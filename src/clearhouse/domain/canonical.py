"""Canonical JSON (RFC 8785, JCS) of entries and statements.

Clearhouse's documents hold only ASCII keys, strings, integers, booleans, null, lists and
objects (amounts are decimal strings), so JCS comes down to: keys sorted, no whitespace,
strings escaped as JSON requires. msgspec's encoder with sorted keys writes exactly those bytes
(a property test compares it with the reference package ``rfc8785`` on every shape we write).

Closing a period encodes every entry of the month, so an entry is encoded from a Struct (its
fields sorted by the encoder, as a dict's keys would be) rather than from a dict built anew each
time, and a moment is written by ``isoformat`` rather than ``strftime``; property tests hold both
byte for byte against the reference forms (a dict through ``rfc8785``, ``strftime``).
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
    """RFC 3339 in UTC with microseconds and ``Z``: ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")``."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such a year without leading zeros, isoformat with
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"  # less "+00:00"


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


class CanonicalPosting(msgspec.Struct):
    """A posting of an entry's canonical line. Its fields are declared in the order of their
    names, which is the order JCS writes them in (``_line_encoder`` keeps declaration order)."""

    account: str
    amount: int | str
    """Points as an integer; money as its decimal string."""
    asset: str


class _Line(msgspec.Struct):
    """An entry's canonical line, its fields declared in the order of their names (JCS's)."""

    content_digest: str | None
    contract_version: int | None
    entry_id: str
    evidence: str
    kind: str
    member_id: str | None
    occurred_at: str | None
    partner_id: str | None
    points: int
    postings: list[CanonicalPosting]
    recorded_at: str
    reference: str | None
    reversal_of: str | None
    signature: str | None
    signature_base: str | None
    signature_input: str | None


class _CaptureLine(msgspec.Struct):
    """A capture's line: ``_Line`` and its ``hold_id``, in its place by name."""

    content_digest: str | None
    contract_version: int | None
    entry_id: str
    evidence: str
    hold_id: str
    kind: str
    member_id: str | None
    occurred_at: str | None
    partner_id: str | None
    points: int
    postings: list[CanonicalPosting]
    recorded_at: str
    reference: str | None
    reversal_of: str | None
    signature: str | None
    signature_base: str | None
    signature_input: str | None


_line_encoder = msgspec.json.Encoder()
"""Writes a Struct's fields in the order they are declared: the lines' are declared sorted, so
this is ``_encoder``'s output without sorting the fields again for every entry (a test holds the
declarations sorted, and the lines against the reference)."""


def _posting_order(posting: tuple[str, str, int | Decimal]) -> tuple[str, str]:
    return posting[0], posting[1]


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

    This is the typed form; ``canonical_line`` takes the same fields already written as text.
    """
    return canonical_line(
        entry_id=str(entry_id),
        kind=kind,
        partner_id=partner_id,
        member_id=member_id,
        points=points,
        postings=[
            (account, asset, int(amount), None)
            if asset == "PTS"
            else (account, asset, None, str(amount))
            for account, asset, amount in sorted(postings, key=_posting_order)
        ],
        contract_version=contract_version,
        occurred_at=None if occurred_at is None else utc_text(occurred_at),
        recorded_at=utc_text(recorded_at),
        reference=reference,
        reversal_of=None if reversal_of is None else str(reversal_of),
        signature_input=signature_input,
        signature=signature,
        content_digest=content_digest,
        signature_base=signature_base,
        hold_id=None if hold_id is None else str(hold_id),
    )


def canonical_line(
    *,
    entry_id: str,
    kind: str,
    partner_id: str | None,
    member_id: str | None,
    points: int,
    postings: Sequence[Sequence[Any]],
    contract_version: int | None,
    occurred_at: str | None,
    recorded_at: str,
    reference: str | None,
    reversal_of: str | None,
    signature_input: str | None,
    signature: str | None,
    content_digest: str | None,
    signature_base: str | None,
    hold_id: str | None = None,
) -> bytes:
    """``canonical_entry`` of fields already written as their text: ids as UUID text, moments as
    ``utc_text``, postings in ``(account, asset)`` order of code points, each as ``(account,
    asset, points, money)``: points as ``int`` and money ``None``, or points ``None`` and money
    as its decimal string (``line_of_fields`` takes the same fields by position)."""
    return line_of_fields(
        entry_id,
        kind,
        partner_id,
        member_id,
        points,
        contract_version,
        occurred_at,
        recorded_at,
        reference,
        reversal_of,
        signature_input,
        signature,
        content_digest,
        signature_base,
        hold_id,
        [
            CanonicalPosting(account, money if whole is None else whole, asset)
            for account, asset, whole, money in postings
        ],
    )


def line_of_fields(
    entry_id: str,
    kind: str,
    partner_id: str | None,
    member_id: str | None,
    points: int,
    contract_version: int | None,
    occurred_at: str | None,
    recorded_at: str,
    reference: str | None,
    reversal_of: str | None,
    signature_input: str | None,
    signature: str | None,
    content_digest: str | None,
    signature_base: str | None,
    hold_id: str | None,
    postings: list[CanonicalPosting],
    /,
) -> bytes:
    """``canonical_line`` by position, postings already made: closing a period calls it once per
    entry of the month, with the fields in the order its query reads them, since binding
    sixteen keywords per entry took a good part of the time of writing a line."""
    evidence = evidence_of(kind, signature)
    before = (content_digest, contract_version, entry_id, evidence)
    after = (
        kind,
        member_id,
        occurred_at,
        partner_id,
        points,
        postings,
        recorded_at,
        reference,
        reversal_of,
        signature,
        signature_base,
        signature_input,
    )
    if hold_id is None:
        return _line_encoder.encode(_Line(*(before + after)))
    return _line_encoder.encode(_CaptureLine(*(*before, hold_id, *after)))
