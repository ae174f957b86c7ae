"""Holds: points of a member reserved for a partner, then captured, voided or expired.

A hold writes no ledger entry: the points stay in the member's balance and count as ``held``,
so the member's available points are ``balance - held``. A capture redeems up to the held
points with an ordinary redeem entry and releases the rest; a void releases them all; a hold
whose time (``expires_at``, on the ledger clock) has passed can no longer be captured or voided
and is released by the next write that needs the member's points, or by the sweeper.

This module holds the rules that need no database: what a valid request is, the states, and
what an Idempotency-Key's fingerprint covers of each operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.money import validate_points

HOLD_SECONDS_DEFAULT: Final = 86_400
"""A hold's time when the request names none: one day."""
HOLD_SECONDS_MIN: Final = 1
HOLD_SECONDS_CONTRACT_DEFAULT: Final = 604_800
"""A contract's ``limits.max_hold_seconds`` when it names none: seven days."""


class HoldStatus(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold as recorded; ``status`` as of the read (an open hold past ``expires_at`` reads
    ``expired``: it can no longer be captured, whether or not it was released yet)."""

    hold_id: UUID
    partner_id: str
    member_id: str
    points: int
    status: HoldStatus
    reference: str
    occurred_at: datetime
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    captured_points: int | None
    capture_entry_id: UUID | None
    contract_version: int


@dataclass(frozen=True, slots=True)
class MemberPoints:
    """A member's points right after a hold changed: balance, held, and what is available."""

    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


def status_at(status: HoldStatus, expires_at: datetime, now: datetime) -> HoldStatus:
    """What a hold is at ``now``: an open hold whose time has run out is expired."""
    if status is HoldStatus.OPEN and expires_at <= now:
        return HoldStatus.EXPIRED
    return status


def validate_hold_seconds(hold_seconds: int | None) -> int:
    """The hold's time in seconds: the default when absent, at least one second."""
    if hold_seconds is None:
        return HOLD_SECONDS_DEFAULT
    if isinstance(hold_seconds, bool) or not isinstance(hold_seconds, int):
        raise InvalidRequest("hold_seconds must be a whole number", field="hold_seconds")
    if hold_seconds < HOLD_SECONDS_MIN:
        raise InvalidRequest("hold_seconds must be at least 1", field="hold_seconds")
    if hold_seconds > 2**31 - 1:
        raise InvalidRequest("hold_seconds is too large", field="hold_seconds")
    return hold_seconds


def validate_capture_points(points: int | None) -> int | None:
    """The points a capture asks for; None captures all the hold reserved. Zero is refused:
    a capture of nothing is a void."""
    if points is None:
        return None
    if points == 0 and not isinstance(points, bool):
        raise InvalidRequest("a capture of 0 points is a void: void the hold", field="points")
    return validate_points(points)


def authorize_fields(
    member_id: str,
    points: int,
    hold_seconds: int,
    occurred_at: str,
    reference: str,
    metadata_json: str | None,
) -> dict[str, object]:
    """What an Idempotency-Key's fingerprint covers of an authorization."""
    return {
        "member_id": member_id,
        "points": points,
        "hold_seconds": hold_seconds,
        "occurred_at": occurred_at,
        "reference": reference,
        "metadata": metadata_json,
    }


def capture_fields(hold_id: UUID, points: int | None) -> dict[str, object]:
    """What an Idempotency-Key's fingerprint covers of a capture (``points`` as asked)."""
    return {"hold_id": str(hold_id), "points": points}


def void_fields(hold_id: UUID, reason: str | None) -> dict[str, object]:
    """What an Idempotency-Key's fingerprint covers of a void."""
    return {"hold_id": str(hold_id), "reason": reason}
