"""Limits on what one request may cost before any work is done for it.

Two ASGI middlewares, first in the app's stack right after the request id (so that a refusal
carries its id in the problem's ``instance``, in ``X-Request-Id`` and in the log line, and is
counted in the metrics like any other answer):

- ``RequestHeaderLimit``: header fields over ``CLEARHOUSE_HEADER_BYTES_MAX`` (names and values
  summed) are refused with ``431 request_header_fields_too_large``;
- ``ConcurrentRequestsCap``: past ``CLEARHOUSE_CONCURRENT_REQUESTS_MAX`` requests in flight in
  this worker, a request is refused with ``503 unavailable`` and ``Retry-After``.

Both answer the problem themselves rather than raise it, so they hold under any ASGI server and
around any ASGI app. Under uvicorn, ``web/server.py`` enforces the header limit once more at the
socket, where a head of many megabytes is cut off before it is buffered, and closes connections
whose head does not arrive in time.
"""

from __future__ import annotations

from typing import Final

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from clearhouse.web.problem_codes import PROBLEMS
from clearhouse.web.problems import RETRY_AFTER_S, Problem
from clearhouse.web.request_id import request_id_of

UNCAPPED_PATHS: Final = frozenset({"/health"})
"""Liveness stays outside the cap: a probe refused under load would have a busy but healthy
worker restarted, dropping every request it holds. ``/ready`` is capped, so a full worker
leaves the load balancer's rotation until it has room again."""


def problem_body(code: str, detail: str, instance: str) -> bytes:
    """The JSON of the problem ``code``, shaped as the app's exception handlers shape it."""
    status, title = PROBLEMS[code]
    problem = Problem(
        type=f"/problems/{code}",
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        code=code,
    )
    return msgspec.json.encode(problem)


async def send_problem(
    scope: Scope,
    send: Send,
    code: str,
    detail: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer the request in ``scope`` with the problem ``code``."""
    request_id = request_id_of(scope)
    body = problem_body(code, detail, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": PROBLEMS[code][0],
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class RequestHeaderLimit(ASGIMiddleware):
    """Refuses a request whose header fields hold more than ``header_bytes_max`` bytes."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, header_bytes_max: int) -> None:
        self.header_bytes_max = header_bytes_max

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        header_bytes = sum(len(name) + len(value) for name, value in scope["headers"])
        if header_bytes > self.header_bytes_max:
            detail = (
                f"the header fields hold {header_bytes} bytes (names and values); "
                f"at most {self.header_bytes_max} are accepted"
            )
            await send_problem(scope, send, "request_header_fields_too_large", detail)
            return
        await next_app(scope, receive, send)


class ConcurrentRequestsCap(ASGIMiddleware):
    """Refuses a request while ``requests_max`` others are in flight in this worker process.

    One instance serves every route of the app, so its count is the worker's; the event loop
    runs one middleware at a time, so the count needs no lock.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, requests_max: int) -> None:
        self.requests_max = requests_max
        self.in_flight = 0

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["path"] in UNCAPPED_PATHS:
            await next_app(scope, receive, send)
            return
        if self.in_flight >= self.requests_max:
            detail = (
                f"this worker is answering its maximum of {self.requests_max} requests at "
                "once; nothing was done, retry later"
            )
            retry_after = (b"retry-after", str(RETRY_AFTER_S).encode())
            await send_problem(scope, send, "unavailable", detail, (retry_after,))
            return
        self.in_flight += 1
        try:
            await next_app(scope, receive, send)
        finally:
            self.in_flight -= 1
