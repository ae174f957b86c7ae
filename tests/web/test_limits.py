"""What one request may cost before any work is done: header bytes and requests in flight.

The header limit is checked through the real app on ``/health`` (no database needed); the cap on
requests in flight is driven directly around a tiny ASGI app that holds its requests until the
test releases them; the socket layer (``web/server.py``) is fed reads by hand, to count what
reaches its parser. Its timeouts, and all of it behind a real port, are in
``tests/e2e/test_server_limits.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from clearhouse.config import Settings, SettingsError
from clearhouse.web.app import create_app
from clearhouse.web.limits import ConcurrentRequestsCap
from clearhouse.web.problems import RETRY_AFTER_S
from clearhouse.web.server import BoundedHttpToolsProtocol, head_limits
from tests.web.harness import assert_problem, settings_for

KIB = 1024
BOUND_S = 10
"""No test here waits longer than this for the app under test."""


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with its default limits; ``/health`` needs no database."""
    settings = settings_for(tmp_path)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url=settings.public_base_url) as client:
        yield client


async def test_request_headers_over_the_limit_are_refused_with_431(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.get("/health", headers={"X-Padding": "a" * (33 * KIB)})
    body = assert_problem(response, 431, "request_header_fields_too_large")
    assert "32768" in body["detail"]


async def test_request_headers_under_the_limit_are_served(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health", headers={"X-Padding": "a" * (31 * KIB)})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


async def test_the_header_limit_counts_every_header_together(
    app_client: httpx.AsyncClient,
) -> None:
    many = {f"X-Padding-{n}": "a" * KIB for n in range(33)}
    response = await app_client.get("/health", headers=many)
    assert_problem(response, 431, "request_header_fields_too_large")


def test_limit_settings_have_their_defaults_and_refuse_values_out_of_bounds() -> None:
    defaults = Settings.from_env({})
    assert (
        defaults.header_bytes_max,
        defaults.header_timeout_s,
        defaults.body_timeout_s,
        defaults.concurrent_requests_max,
    ) == (32768, 10, 10, 64)
    for name in (
        "CLEARHOUSE_HEADER_BYTES_MAX",
        "CLEARHOUSE_HEADER_TIMEOUT_S",
        "CLEARHOUSE_BODY_TIMEOUT_S",
        "CLEARHOUSE_CONCURRENT_REQUESTS_MAX",
    ):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: "0"})


class HeldApp:
    """An ASGI app that holds each request until ``release`` is set; ``/health`` answers at once.

    ``arrived`` is set once ``holding`` requests have entered it.
    """

    def __init__(self, holding: int) -> None:
        self.holding = holding
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        if self.entered == self.holding:
            self.arrived.set()
        if scope["path"] != "/health":
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


@asynccontextmanager
async def capped(held: HeldApp, cap: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client on ``held`` behind a cap of ``cap``; the whole test gets ``BOUND_S`` seconds,
    and whatever it still holds at the end is released."""
    app = ConcurrentRequestsCap(cap)(held)
    transport = httpx.ASGITransport(app=app)
    async with (
        asyncio.timeout(BOUND_S),
        httpx.AsyncClient(transport=transport, base_url="http://capped.test") as client,
    ):
        try:
            yield client
        finally:
            held.release.set()


async def test_requests_over_the_cap_are_refused_with_503_and_do_no_work() -> None:
    held = HeldApp(holding=2)
    async with capped(held, cap=2) as client:
        in_flight = [asyncio.create_task(client.get("/v1/work")) for _ in range(2)]
        await held.arrived.wait()

        refused = await client.get("/v1/work")

        assert_problem(refused, 503, "unavailable")
        assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
        assert held.entered == 2, "a refused request reached the app"
        held.release.set()
        answered = await asyncio.gather(*in_flight)
        assert [r.status_code for r in answered] == [200, 200]
        again = await asyncio.gather(*(client.get("/v1/work") for _ in range(2)))
        assert [r.status_code for r in again] == [200, 200]


async def test_a_request_that_fails_gives_back_its_place_under_the_cap() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the handler broke")

    app = ConcurrentRequestsCap(1)(failing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        asyncio.timeout(BOUND_S),
        httpx.AsyncClient(transport=transport, base_url="http://capped.test") as client,
    ):
        for _ in range(3):
            response = await client.get("/v1/work")
            assert response.status_code == 500  # the app's failure, not the cap's 503


async def test_health_is_answered_when_the_cap_is_reached() -> None:
    held = HeldApp(holding=1)
    async with capped(held, cap=1) as client:
        in_flight = asyncio.create_task(client.get("/v1/work"))
        await held.arrived.wait()

        assert (await client.get("/health")).status_code == 200
        assert_problem(await client.get("/ready"), 503, "unavailable")

        held.release.set()
        assert (await in_flight).status_code == 200


# --- The socket layer, driven in-process ---------------------------------------------------


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what the protocol writes and whether it closed."""

    def __init__(self) -> None:
        super().__init__(extra={"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)})
        self.written = bytearray()
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


class CountingParser:
    """Stands in front of the protocol's parser and counts the bytes it is fed."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.fed_bytes = 0

    def feed_data(self, data: bytes) -> None:
        self.fed_bytes += len(data)
        self.parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


class Answering:
    """An ASGI app that reads each body and answers 200; ``done`` is set after ``expected``."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.answered = 0
        self.done = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        self.answered += 1
        if self.answered == self.expected:
            self.done.set()


@asynccontextmanager
async def a_connection(
    app: Any,
) -> AsyncIterator[tuple[BoundedHttpToolsProtocol, RecordingTransport, CountingParser]]:
    config = Config(app=app, lifespan="off", log_config=None, proxy_headers=False)
    protocol = BoundedHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = RecordingTransport()
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    parser = CountingParser(protocol.parser)
    protocol.parser = parser  # type: ignore[assignment]
    try:
        async with asyncio.timeout(BOUND_S):
            yield protocol, transport, parser
    finally:
        protocol.connection_lost(None)


async def test_the_socket_layer_feeds_the_parser_no_more_of_a_head_than_its_limit() -> None:
    read = b"a" * (64 * KIB)
    async with a_connection(Answering(expected=1)) as (protocol, transport, parser):
        protocol.data_received(b"GET /health HTTP/1.1\r\nHost: a\r\nX-Padding: ")
        reads = 0
        while not transport.is_closing() and reads < 512:  # 512 reads: the 32 MB of the finding
            protocol.data_received(read)
            reads += 1

    assert reads == 1, "the connection stayed open past the first read over the limit"
    assert parser.fed_bytes <= head_limits().head_bytes_max
    answer = bytes(transport.written)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n")[1:]
    assert b"content-type: application/problem+json" in fields
    assert b"connection: close" in fields
    problem = json.loads(body)
    assert problem["code"] == "request_header_fields_too_large"
    assert problem["status"] == 431
    assert b"x-request-id: " + problem["instance"].encode() in fields


async def test_a_body_and_a_next_request_in_the_same_read_do_not_count_against_the_head() -> None:
    body = b"x" * (head_limits().head_bytes_max + 20000)
    one_read = (
        b"POST /work HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        + b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    app = Answering(expected=2)
    async with a_connection(app) as (protocol, transport, _):
        protocol.data_received(one_read)
        await app.done.wait()

        assert not transport.is_closing()
        assert bytes(transport.written).count(b"HTTP/1.1 200 OK\r\n") == 2
