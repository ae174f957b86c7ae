"""What a call to Clearhouse can raise, and the one place an answer becomes an exception.

    Exception
    ├── ClearhouseProblem         an RFC 9457 problem: .status, .code (stable), .detail, .instance
    │   ├── InvalidRequest        400, 413, 415
    │   ├── SignatureRejected     401
    │   ├── Forbidden             403
    │   ├── NotFound              404
    │   ├── Conflict              409
    │   │   ├── HoldNotOpen       the hold has ended: .hold_status (captured, voided, expired)
    │   │   └── BatchNotApplied   an atomic batch had a refused item: .refused (their results)
    │   ├── Unprocessable         422
    │   └── Unavailable           503, retried
    └── ResponseNotSigned         the receipt is absent or does not verify
        └── UnknownReceiptKey     the receipt names a coalition key the client does not know

A status without a class of its own raises ``ClearhouseProblem`` itself. Network failures stay
httpx's (``httpx.TransportError``); they are retried like ``Unavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx


class ClearhouseProblem(Exception):
    """An RFC 9457 problem answered by Clearhouse; ``code`` is stable, ``detail`` for people."""

    def __init__(self, status: int, code: str, detail: str, instance: str | None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.instance = instance


class InvalidRequest(ClearhouseProblem):
    """400: the request is malformed or holds a bad value."""


class SignatureRejected(ClearhouseProblem):
    """401: the request's signature, key, freshness, nonce or digest was refused."""


class Forbidden(ClearhouseProblem):
    """403: not allowed, or not for this purpose, or no consent."""


class NotFound(ClearhouseProblem):
    """404: unknown, or another partner's."""


class Conflict(ClearhouseProblem):
    """409: e.g. ``insufficient_points``, ``idempotency_key_in_use``."""


class HoldNotOpen(Conflict):
    """409 ``hold_already_captured``, ``hold_already_voided`` or ``hold_expired``: the hold
    ended before this capture or void; ``hold_status`` says how."""

    def __init__(
        self, status: int, code: str, detail: str, instance: str | None, hold_status: str
    ) -> None:
        super().__init__(status, code, detail, instance)
        self.hold_status = hold_status


class BatchNotApplied(Conflict):
    """409 ``batch_not_applied``: an item of an atomic batch was refused and nothing was
    written; ``refused`` holds each refused item's result (``index``, ``idempotency_key``,
    ``status``, ``problem``) as the server sent it."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        instance: str | None,
        refused: list[dict[str, Any]],
    ) -> None:
        super().__init__(status, code, detail, instance)
        self.refused = refused


HOLD_ENDED_CODES: Final = frozenset(
    {"hold_already_captured", "hold_already_voided", "hold_expired"}
)


class Unprocessable(ClearhouseProblem):
    """422: e.g. ``idempotency_key_reused``, ``limit_exceeded``, ``unknown_member``."""


class Unavailable(ClearhouseProblem):
    """503: the service could not reach its database; nothing was written. Retried."""


class ResponseNotSigned(Exception):
    """The response's receipt signature is absent or does not verify: do not trust it."""


class UnknownReceiptKey(ResponseNotSigned):
    """The receipt names a coalition key the client does not know."""


_PROBLEM_CLASSES: Final[Mapping[int, type[ClearhouseProblem]]] = {
    400: InvalidRequest,
    401: SignatureRejected,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: Unprocessable,
    503: Unavailable,
}


def problem_of(response: httpx.Response) -> ClearhouseProblem:
    """The exception of a refusal, by its status, with the problem's code and detail."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code", "unknown"))
    detail = str(body.get("detail", response.reason_phrase))
    if code in HOLD_ENDED_CODES:
        hold_status = str(body.get("hold_status", ""))
        return HoldNotOpen(response.status_code, code, detail, body.get("instance"), hold_status)
    if code == "batch_not_applied":
        refused = list(body.get("refused", []))
        return BatchNotApplied(response.status_code, code, detail, body.get("instance"), refused)
    cls = _PROBLEM_CLASSES.get(response.status_code, ClearhouseProblem)
    return cls(response.status_code, code, detail, body.get("instance"))
