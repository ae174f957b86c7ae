"""The JSON shapes at the HTTP edge (msgspec Structs): what partners and operators send and get.

Request bodies refuse unknown fields; points are JSON integers, times RFC 3339 UTC.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request

from clearhouse.domain import holds, records
from clearhouse.domain.periods import period_of
from clearhouse.web.bad_requests import RequestFault, refused_body

T = TypeVar("T")


class PointsBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An issue or a redeem."""

    member_id: str
    points: int
    occurred_at: datetime
    reference: str
    metadata: dict[str, Any] | None = None


class ReversalBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A reversal of all (``points`` absent) or part of what remains of an entry."""

    reason: str
    points: int | None = None


class Entry(msgspec.Struct, frozen=True):
    """An entry as a partner sees it."""

    entry_id: UUID
    kind: str
    partner_id: str | None
    member_id: str | None
    points: int
    period: str
    occurred_at: str | None
    recorded_at: str
    reference: str | None
    reversal_of: UUID | None
    contract_version: int | None
    member_balance: int | None = None


class BatchItemBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One issue or redeem of a batch: a single request's body, with its kind and its key."""

    kind: Literal["issue", "redeem"]
    idempotency_key: str
    member_id: str
    points: int
    occurred_at: datetime
    reference: str
    metadata: dict[str, Any] | None = None


class BatchBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Up to 1,000 issues (``Data-Purpose: accrual``) or redeems (``redemption``)."""

    items: list[BatchItemBody]
    atomic: bool = False
    """All or nothing: one item refused and none is written (``409 batch_not_applied``)."""


class ItemProblem(msgspec.Struct, frozen=True, omit_defaults=True):
    """Why an item of a batch was refused: the problem a single request would have been
    answered with (RFC 9457 members, ``instance`` aside: the batch has the request id)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[RequestFault] | None = None


class BatchItemResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """What an item came to: ``201`` with its entry (``replayed`` when an earlier request under
    its key made it), or the status and problem that refused it."""

    index: int
    idempotency_key: str
    status: int
    entry: Entry | None = None
    replayed: bool | None = None
    problem: ItemProblem | None = None


class BatchResult(msgspec.Struct, frozen=True):
    """A batch's answer: every item's result, in the items' order."""

    atomic: bool
    posted: int
    """Items with an entry (new or replayed)."""
    refused: int
    results: list[BatchItemResult]


class HoldBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An authorization: reserve ``points`` of the member's available points."""

    member_id: str
    points: int
    reference: str
    occurred_at: datetime
    hold_seconds: int | None = None
    """How long the hold reserves the points (default one day; at most the contract's
    ``limits.max_hold_seconds``)."""
    metadata: dict[str, Any] | None = None


class CaptureBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A capture of ``points`` (all the hold reserved when absent); the rest is released."""

    points: int | None = None


class VoidBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reason: str | None = None


class Hold(msgspec.Struct, frozen=True, omit_defaults=True):
    """A hold as a partner sees it; after a change, with the member's points right after it
    (and a capture's redeem entry)."""

    hold_id: UUID
    status: str
    """``open``, ``captured``, ``voided`` or ``expired`` (an open hold past ``expires_at`` reads
    ``expired``: it can no longer be captured)."""
    partner_id: str
    member_id: str
    points: int
    """The points the hold reserved."""
    reference: str
    occurred_at: str
    created_at: str
    expires_at: str
    closed_at: str | None
    captured_points: int | None
    capture_entry_id: UUID | None
    contract_version: int
    member_balance: int | None = None
    member_held: int | None = None
    member_available: int | None = None
    entry: Entry | None = None


class HoldPage(msgspec.Struct, frozen=True):
    holds: list[Hold]
    next_cursor: str | None


class EntryPage(msgspec.Struct, frozen=True):
    entries: list[Entry]
    next_cursor: str | None


class PublicKey(msgspec.Struct, frozen=True):
    key_id: str
    algorithm: str
    public_key: str
    """The 32 raw bytes of the Ed25519 key, base64."""
    use: list[str]
    status: str
    """``current`` (signs now) or ``retired`` (signed until ``not_after``; verifies for ever)."""
    not_before: str
    """When the key took over."""
    not_after: str | None
    """When the key retired; None while it is current."""


class PublicKeys(msgspec.Struct, frozen=True):
    keys: list[PublicKey]


class PartnerIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    partner_id: str
    legal_name: str


class Partner(msgspec.Struct, frozen=True):
    partner_id: str
    legal_name: str
    created_at: str
    active_keys: int


class KeyIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    public_key: str
    """PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""
    key_id: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None


class PartnerKey(msgspec.Struct, frozen=True):
    key_id: str
    partner_id: str
    public_key: str
    not_before: str
    not_after: str | None
    revoked_at: str | None


class ClockIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    at: datetime


class Clock(msgspec.Struct, frozen=True):
    ledger_time: str


class ClosedPeriod(msgspec.Struct, frozen=True):
    """A sealed month as auditors read it; hashes in lowercase hex."""

    period: str
    status: str
    """``closed``, or ``settled`` once its statements are signed."""
    entry_count: int
    tree_head: str
    """The RFC 9162 tree head over the month's canonical entries."""
    previous_root: str
    """The previous month's root; 32 zero bytes before the first."""
    root: str
    """SHA-256(previous_root ‖ tree_head)."""
    starts_at: str
    ends_at: str
    closed_at: str
    settled_at: str | None


async def strict_body(request: Request[Any, Any, Any], shape: type[T]) -> T:
    """The request body decoded strictly: ``"5"`` is not a number, ``1.5`` not an integer.

    Litestar converts bodies leniently; partner input is checked again here, by the same type.
    """
    try:
        return msgspec.json.decode(await request.body(), type=shape)
    except msgspec.DecodeError as exc:
        raise refused_body(exc) from exc


def rfc3339(moment: datetime) -> str:
    """UTC with microseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hold_out(
    hold: holds.Hold,
    zone: ZoneInfo,
    *,
    member: holds.MemberPoints | None = None,
    entry: records.Entry | None = None,
) -> Hold:
    return Hold(
        hold_id=hold.hold_id,
        status=hold.status.value,
        partner_id=hold.partner_id,
        member_id=hold.member_id,
        points=hold.points,
        reference=hold.reference,
        occurred_at=rfc3339(hold.occurred_at),
        created_at=rfc3339(hold.created_at),
        expires_at=rfc3339(hold.expires_at),
        closed_at=None if hold.closed_at is None else rfc3339(hold.closed_at),
        captured_points=hold.captured_points,
        capture_entry_id=hold.capture_entry_id,
        contract_version=hold.contract_version,
        member_balance=None if member is None else member.balance,
        member_held=None if member is None else member.held,
        member_available=None if member is None else member.available,
        entry=None if entry is None else entry_out(entry, zone, with_balance=True),
    )


def key_out(key: records.PartnerKey) -> PartnerKey:
    return PartnerKey(
        key_id=key.key_id,
        partner_id=key.partner_id,
        public_key=base64.b64encode(key.public_key).decode(),
        not_before=rfc3339(key.not_before),
        not_after=None if key.not_after is None else rfc3339(key.not_after),
        revoked_at=None if key.revoked_at is None else rfc3339(key.revoked_at),
    )


def entry_out(row: records.Entry, zone: ZoneInfo, *, with_balance: bool) -> Entry:
    return Entry(
        entry_id=row.entry_id,
        kind=row.kind.value,
        partner_id=row.partner_id,
        member_id=row.member_id,
        points=row.points,
        period=period_of(row.recorded_at, zone),
        occurred_at=None if row.occurred_at is None else rfc3339(row.occurred_at),
        recorded_at=rfc3339(row.recorded_at),
        reference=row.reference,
        reversal_of=row.reversal_of,
        contract_version=row.contract_version,
        member_balance=row.member_balance_after if with_balance else None,
    )
