"""Outbound events: their types, who receives them, and the cursor a partner pages them with.

An event is written by the database in the transaction of the write it tells of (the outbox,
``outbox_record``); nothing here does I/O. A partner receives only its own events; operator
events (``partner_id`` None) go to no partner endpoint.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from clearhouse.domain.errors import InvalidRequest, UnknownEventType

PARTNER_EVENT_TYPES: Final = frozenset(
    {
        "entry.recorded",
        "hold.authorized",
        "hold.captured",
        "hold.voided",
        "hold.expired",
        "period.closed",
        "statement.available",
        "key.revoked",
        "contract.version_effective",
        "points.expiring",
    }
)
"""What a partner's endpoint may ask for."""
OPERATOR_EVENT_TYPES: Final = frozenset({"webhook_endpoint.disabled"})
TEST_EVENT_TYPE: Final = "webhook_endpoint.test"
"""Sent to one endpoint on request (``POST /v1/webhook-endpoints/{id}/test``) whatever it asked
for."""

ENDPOINTS_PER_PARTNER_MAX: Final = 10
EVENTS_PAGE_MAX: Final = 1000
BIGINT_MAX: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class EventPosition:
    """Where an event lies in the order partners page events in: the id of the transaction
    that wrote it, then its sequence number. Only events of transactions older than every
    transaction still running are served, so no later commit can land before a position
    already served."""

    txid: int
    seq: int

    def cursor(self) -> str:
        raw = f"{self.txid}.{self.seq}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def of_cursor(cls, cursor: str) -> EventPosition:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            txid, seq = raw.split(".")
            position = cls(int(txid), int(seq))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest("the cursor is not one this API gave out", field="after") from exc
        if not (0 <= position.txid <= BIGINT_MAX and 0 <= position.seq <= BIGINT_MAX):
            raise InvalidRequest("the cursor is not one this API gave out", field="after")
        return position


START: Final = EventPosition(0, 0)
"""Before every event."""


@dataclass(frozen=True, slots=True)
class Event:
    """An event as sent: its id (``webhook-id``), type, time and thin data."""

    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    body: bytes
    """The Standard Webhooks payload: the exact bytes every delivery signs and sends."""
    position: EventPosition


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A partner's webhook endpoint (the HMAC secret itself is never read out)."""

    endpoint_id: str
    partner_id: str
    url: str
    event_types: list[str]
    has_secret: bool
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event's delivery to one endpoint, as the operator sees it."""

    delivery_id: int
    event_id: str
    event_type: str
    endpoint_id: str
    partner_id: str
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


def validate_event_types(event_types: object) -> list[str]:
    """A non-empty list of known partner event types, each once; ``UnknownEventType`` names
    what is not one."""
    if not isinstance(event_types, list) or not event_types:
        raise InvalidRequest("event_types must list at least one event type", field="event_types")
    unknown = sorted({str(t) for t in event_types} - PARTNER_EVENT_TYPES)
    if unknown:
        raise UnknownEventType(
            f"unknown event types: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(PARTNER_EVENT_TYPES))})"
        )
    if len(set(event_types)) != len(event_types):
        raise InvalidRequest("an event type is listed twice", field="event_types")
    return sorted(event_types)
