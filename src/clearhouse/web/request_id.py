"""A request id for every request: in the problem's ``instance``, the log and ``X-Request-Id``.

The id is always ours (a random UUID); a client-sent id is never trusted into the logs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from clearhouse.services.metrics import REQUEST_SECONDS, REQUESTS
from clearhouse.web.problem_codes import status_of

log = structlog.get_logger("clearhouse.web")

_STATE_KEY = "request_id"


def request_id_of(scope: Scope | Any) -> str:
    """The id of the request in ``scope``, made on first use."""
    state = scope.setdefault("state", {})
    request_id = state.get(_STATE_KEY)
    if request_id is None:
        request_id = state[_STATE_KEY] = f"urn:uuid:{uuid.uuid4()}"
    return str(request_id)


class RequestIdMiddleware(ASGIMiddleware):
    """Gives each request its id and writes one structured log line when it is answered."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered by the exception handlers outside this middleware: their status.
            status = status_of(exc)
            raise
        finally:
            duration_s = time.perf_counter() - started
            route = str(scope.get("path_template") or "unmatched")
            labels = (scope.get("method", ""), route, str(status))
            REQUESTS.labels(*labels).inc()
            REQUEST_SECONDS.labels(*labels).observe(duration_s)
            log.info(
                "request",
                request_id=request_id,
                method=scope.get("method"),
                path=scope["path"],
                status=status,
                duration_ms=round(duration_s * 1000, 2),
            )
