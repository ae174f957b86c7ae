"""A WebSocket upgrade gets a problem (or a clean close), never a bare 403."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from clearhouse.services.database import Database
from clearhouse.web.app import create_app
from clearhouse.web.websockets import POLICY_VIOLATION, without_websockets
from tests.web.harness import settings_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(database: Database, tmp_path: Path) -> AsyncIterator[int]:
    """The app behind a real uvicorn server on a loopback port, in the test's event loop."""
    port = _free_port()
    app = without_websockets(create_app(settings_for(tmp_path), database))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def test_a_websocket_upgrade_is_answered_with_a_not_found_problem(served: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{served}/v1/transactions", open_timeout=5):
            pass
    response = refused.value.response
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = json.loads(response.body)
    assert problem["code"] == "not_found"
    assert problem["instance"] == response.headers["x-request-id"]


async def test_a_websocket_upgrade_on_a_server_without_http_responses_is_closed_cleanly(
    database: Database, tmp_path: Path
) -> None:
    app = without_websockets(create_app(settings_for(tmp_path), database))
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/v1/members",
        "raw_path": b"/v1/members",
        "query_string": b"",
        "headers": [],
        "subprotocols": [],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": POLICY_VIOLATION, "reason": ""}]


async def test_plain_http_still_passes_through(served: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
