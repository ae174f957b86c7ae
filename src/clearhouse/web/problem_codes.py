"""The problem codes Clearhouse answers with, each with its HTTP status and title: the one place
where an error code becomes a status.

It imports nothing of the web layer, so that both the problem responses
(``clearhouse.web.problems``) and the request log (``clearhouse.web.request_id``) read it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from litestar.exceptions import HTTPException

from clearhouse.domain.errors import ClearhouseError

PROBLEMS: Final[Mapping[str, tuple[int, str]]] = {
    "invalid_request": (400, "The request is malformed or holds a bad value"),
    "missing_signature": (401, "The request is not signed"),
    "invalid_signature": (401, "The signature does not verify"),
    "unknown_key": (401, "The signing key is unknown, revoked or not valid now"),
    "stale_signature": (401, "The signature is too old or too far in the future"),
    "replayed_request": (401, "The request was sent before"),
    "digest_mismatch": (401, "Content-Digest is absent or does not match the body"),
    "invalid_token": (401, "The bearer token is missing, wrong, expired or revoked"),
    "forbidden": (403, "Not allowed"),
    "csrf_failed": (403, "The form's CSRF token is missing or wrong"),
    "purpose_not_permitted": (403, "The contract grants nothing for this purpose"),
    "consent_required": (403, "The member has not consented to this purpose"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "insufficient_points": (409, "Not enough points"),
    "idempotency_key_in_use": (409, "A request with this Idempotency-Key is in progress"),
    "period_not_ended": (409, "The period has not ended yet"),
    "period_closed": (409, "The period is closed"),
    "hold_already_captured": (409, "The hold was captured already"),
    "hold_already_voided": (409, "The hold was voided already"),
    "hold_expired": (409, "The hold expired"),
    "webhook_endpoint_disabled": (409, "The webhook endpoint is disabled"),
    "settlement_refused": (409, "The period does not add up; nothing was written"),
    "batch_not_applied": (409, "An item of the atomic batch was refused; nothing was written"),
    "expiry_run_in_progress": (409, "Another expiry run is under way; this one did nothing"),
    "payload_too_large": (413, "The body is too large"),
    "unsupported_media_type": (415, "The body must be JSON"),
    "request_header_fields_too_large": (431, "The request's header fields are too large"),
    "idempotency_key_reused": (422, "The Idempotency-Key was used with another request"),
    "limit_exceeded": (422, "A contract limit is exceeded"),
    "capture_exceeds_hold": (422, "The capture asks for more points than the hold reserved"),
    "invalid_webhook_url": (422, "The webhook URL is not one Clearhouse delivers to"),
    "unknown_event_type": (422, "Unknown event type"),
    "unknown_member": (422, "Unknown member"),
    "member_erased": (422, "The member's personal data was erased"),
    "internal_error": (500, "Internal error"),
    "unavailable": (503, "The service is unavailable; nothing was written"),
}


def status_of(exc: Exception) -> int:
    """The HTTP status an exception is answered with (500 for anything unexpected)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, ClearhouseError):
        return PROBLEMS.get(exc.code, (500, ""))[0]
    return 500
