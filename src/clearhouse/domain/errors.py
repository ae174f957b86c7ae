"""Every way a request can fail, as values with a stable machine code.

The tree::

    ClearhouseError            code, detail
    ├── InvalidRequest         invalid_request: malformed or out-of-range input; ``field``
    │                          names the input at fault when one does
    ├── NotFound               not_found: unknown, or another partner's (never say which)
    ├── Forbidden              forbidden
    ├── PurposeNotPermitted    purpose_not_permitted: nothing granted for the declared purpose
    ├── InsufficientPoints     insufficient_points: a member (or an entry) would go below zero
    ├── UnknownMember          unknown_member
    ├── MemberErased           member_erased: the member's personal data was erased
    ├── LimitExceeded          limit_exceeded: a contract limit
    ├── CaptureExceedsHold     capture_exceeds_hold: a capture of more than the hold reserved
    ├── HoldNotOpen            a capture or void of a hold that has ended; ``hold_status`` names
    │   │                      its final state
    │   ├── HoldAlreadyCaptured    hold_already_captured
    │   ├── HoldAlreadyVoided      hold_already_voided
    │   └── HoldExpired            hold_expired
    ├── InvalidWebhookUrl      invalid_webhook_url: not https, userinfo, a non-public address
    ├── UnknownEventType       unknown_event_type: an endpoint asks for an event type not known
    ├── WebhookEndpointDisabled  webhook_endpoint_disabled: the endpoint was disabled
    ├── ConsentRequired        consent_required: the purpose needs the member's consent
    ├── IdempotencyKeyReused   idempotency_key_reused: same key, different request
    ├── IdempotencyKeyInUse    idempotency_key_in_use: same key, still being processed
    ├── PeriodNotEnded         period_not_ended: the month has not ended (or an earlier one is open)
    ├── PeriodClosed           period_closed: nothing lands in a closed period any more
    ├── SettlementRefused      settlement_refused: the period does not add up (every reason)
    ├── ClockNotSettable       forbidden: the ledger clock moves only in sandbox mode
    ├── ContractChanged        internal_error: a newer contract version is in force than was
    │                          checked (posting asks again once)
    ├── LedgerInvariantBroken  internal_error: the database refused what the domain let through
    │                          (an append-only row changed, an entry unbalanced): a defect
    └── Unavailable            unavailable: the database cannot be reached; nothing was written

The web layer maps codes to HTTP statuses in one place (``clearhouse.web.problems``); the CLI
prints ``code: detail``; the SQLSTATEs the database raises map to these in one place too
(``clearhouse.storage.sqlstates``). Nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

Field: TypeAlias = tuple[str | int, ...]
"""Where an input lies in a request: its name (``("member_id",)``), or the path of keys and
array indexes to it (``("personal", "email")``, ``("metadata", "basket", 0, "sku")``); ``()``
is the request's whole body."""


class ClearhouseError(Exception):
    """Base of every expected failure. ``code`` is stable; ``detail`` is for people."""

    code = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, object]:
        """Members the problem carries besides ``code`` and ``detail`` (none by default)."""
        return {}


class InvalidRequest(ClearhouseError):
    """Malformed or out-of-range input. ``field``, when known, says which input: a name or a
    path (see ``Field``); the web layer writes it as a JSON Pointer into the body, or as the name
    of the query, path or header parameter of that name."""

    code = "invalid_request"

    def __init__(self, detail: str, *, field: str | Field | None = None) -> None:
        super().__init__(detail)
        self.field: Field | None = (field,) if isinstance(field, str) else field


class NotFound(ClearhouseError):
    code = "not_found"


class Forbidden(ClearhouseError):
    code = "forbidden"


class PurposeNotPermitted(ClearhouseError):
    code = "purpose_not_permitted"


class InsufficientPoints(ClearhouseError):
    code = "insufficient_points"


class UnknownMember(ClearhouseError):
    code = "unknown_member"


class MemberErased(ClearhouseError):
    code = "member_erased"


class LimitExceeded(ClearhouseError):
    code = "limit_exceeded"


class CaptureExceedsHold(ClearhouseError):
    code = "capture_exceeds_hold"


class HoldNotOpen(ClearhouseError):
    """The hold ended before this capture or void; ``hold_status`` is how it ended."""

    code = "internal_error"
    hold_status = ""

    def extensions(self) -> dict[str, object]:
        return {"hold_status": self.hold_status}


class HoldAlreadyCaptured(HoldNotOpen):
    code = "hold_already_captured"
    hold_status = "captured"


class HoldAlreadyVoided(HoldNotOpen):
    code = "hold_already_voided"
    hold_status = "voided"


class HoldExpired(HoldNotOpen):
    code = "hold_expired"
    hold_status = "expired"


class InvalidWebhookUrl(ClearhouseError):
    code = "invalid_webhook_url"


class UnknownEventType(ClearhouseError):
    code = "unknown_event_type"


class WebhookEndpointDisabled(ClearhouseError):
    code = "webhook_endpoint_disabled"


class ConsentRequired(ClearhouseError):
    code = "consent_required"


class IdempotencyKeyReused(ClearhouseError):
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(ClearhouseError):
    code = "idempotency_key_in_use"


class PeriodNotEnded(ClearhouseError):
    code = "period_not_ended"


class PeriodClosed(ClearhouseError):
    code = "period_closed"


class SettlementRefused(ClearhouseError):
    """The period does not add up; nothing was written. ``problems`` holds every reason."""

    code = "settlement_refused"

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("the settlement does not add up: " + "; ".join(problems))
        self.problems = tuple(problems)


class ExpiryRunInProgress(ClearhouseError):
    """Another expiry run holds the coalition's expiry lock; this one did nothing."""

    code = "expiry_run_in_progress"


class ClockNotSettable(ClearhouseError):
    code = "forbidden"


class ContractChanged(ClearhouseError):
    """The database holds a newer contract version in force than the one the caller named."""

    code = "internal_error"


class LedgerInvariantBroken(ClearhouseError):
    """The database's second check of a ledger rule failed where the domain's first passed."""

    code = "internal_error"


class Unavailable(ClearhouseError):
    code = "unavailable"
