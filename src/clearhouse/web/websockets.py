"""WebSocket upgrades are answered, not dropped: Clearhouse speaks plain HTTP only.

Without this, an upgrade request meets the router's close before accept, which the server
turns into a bare ``403`` with no body. Here it gets a ``404 not_found`` problem like any other
unknown resource (through the ASGI ``websocket.http.response`` extension, which uvicorn
offers), or, on a server without that extension, a clean close (1008, policy violation).
"""

from __future__ import annotations

import json
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from clearhouse.web.problem_codes import PROBLEMS
from clearhouse.web.request_id import request_id_of

POLICY_VIOLATION: Final = 1008


def _problem(request_id: str) -> bytes:
    status, title = PROBLEMS["not_found"]
    return json.dumps(
        {
            "type": "/problems/not_found",
            "title": title,
            "status": status,
            "detail": "Clearhouse serves no WebSocket endpoints; call its HTTP API",
            "instance": request_id,
            "code": "not_found",
        }
    ).encode()


def without_websockets(app: ASGIApp) -> ASGIApp:
    """``app``, with every WebSocket upgrade refused before it reaches the router."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.WEBSOCKET:
            await app(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": ""})
            return
        request_id = request_id_of(scope)
        body = _problem(request_id)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": PROBLEMS["not_found"][0],
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})

    return serve
