"""The HTTP protocol of ``clearhouse serve``: uvicorn's httptools, with heads and bodies bounded.

uvicorn's httptools protocol puts no limit on a request head and no time on its arrival or on
its body's: httptools grows a header value in memory until its line ends, so a 32 MB header is
buffered whole, and a client that sends its head or its body a byte at a time holds the
connection, and with a body one of the worker's ``CLEARHOUSE_CONCURRENT_REQUESTS_MAX`` places,
for as long as it likes. ``BoundedHttpToolsProtocol`` keeps everything else of uvicorn and
adds three rules:

- at most ``CLEARHOUSE_HEADER_BYTES_MAX`` plus ``REQUEST_LINE_BYTES_MAX`` bytes of a head reach
  the parser; past that the client gets a minimal ``431 request_header_fields_too_large``
  problem and the connection is closed, the rest of the head unread;
- a connection whose head is not complete ``CLEARHOUSE_HEADER_TIMEOUT_S`` after it opened (or
  after the first byte of its next request, on a kept-alive connection) is closed;
- a request whose body has not fully arrived ``CLEARHOUSE_BODY_TIMEOUT_S`` after its head
  completed is ended: the connection is closed, and the app's ``receive()`` returns
  ``http.disconnect``. A request without a body, and the time a handler takes to answer once
  its body is in, are not affected.

The app's ``RequestHeaderLimit`` (``web/limits.py``) applies the exact limit to the header
fields; this is the guard that keeps the bytes from being read in the first place.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from clearhouse.config import Settings
from clearhouse.web.limits import problem_body

log = structlog.get_logger("clearhouse.web")

REQUEST_LINE_BYTES_MAX: Final = 8192
"""Room in a head for what the app's header limit does not count: the request line, and each
field's ``: `` and line end."""


@dataclass(frozen=True, slots=True)
class HeadLimits:
    head_bytes_max: int
    timeout_s: float
    body_timeout_s: float


@functools.cache
def head_limits() -> HeadLimits:
    """This worker's limits. uvicorn builds the protocol itself, in each worker process it
    spawns, so the settings are read there, as ``app_from_env`` reads them for the app."""
    settings = Settings.from_env()
    return HeadLimits(
        head_bytes_max=settings.header_bytes_max + REQUEST_LINE_BYTES_MAX,
        timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the size and the arrival time of a head,
    and on the arrival time of a body."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = head_limits()
        self.head_bytes_max = limits.head_bytes_max
        self.head_timeout_s = limits.timeout_s
        self.body_timeout_s = limits.body_timeout_s
        self.reading_head = True
        self.head_bytes = 0
        """Bytes fed to the parser since the last head completed."""
        self.read_timer: asyncio.TimerHandle | None = None
        """Ends the connection when the head, or then the body, being read is late."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is closed too: uvicorn arms no timer until a
        # first response is complete.
        self._arm_read_timer(self.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head and self.read_timer is None:
            # The first byte of the next request on a kept-alive connection: uvicorn has just
            # cancelled its keep-alive timer, so the head gets its own time from here.
            self._arm_read_timer(self.head_timeout_s, self._head_timed_out)
        # The parser gets no more of a head than the limit: fed in slices of the room left,
        # so that a body or a pipelined request that arrives in the same read is not counted
        # against the head before it (``on_headers_complete`` resets the count mid-slice).
        # A WebSocket upgrade hands the transport to another protocol: the rest is not ours.
        while data and not self.transport.is_closing() and self.transport.get_protocol() is self:
            if not self.reading_head:
                super().data_received(data)
                return
            room = self.head_bytes_max - self.head_bytes
            if room <= 0:
                self._refuse_head_too_large()
                return
            head, data = data[:room], data[room:]
            self.head_bytes += len(head)
            super().data_received(head)

    def on_headers_complete(self) -> None:
        self._cancel_read_timer()
        self.reading_head = False
        self.head_bytes = 0
        super().on_headers_complete()
        # The body gets its own time, until the message is complete. Without a body that is
        # within this same parser call, so the timer never fires; a handler's time after its
        # body arrived is not counted. A WebSocket upgrade has no body and no request cycle:
        # the connection is the WebSocket protocol's from here.
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._arm_read_timer(self.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel_read_timer()
        super().on_message_complete()
        self.reading_head = True  # what comes next is the head of the next request

    def _arm_read_timer(self, timeout_s: float, timed_out: Callable[[], None]) -> None:
        self._cancel_read_timer()
        self.read_timer = self.loop.call_later(timeout_s, timed_out)

    def _cancel_read_timer(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _head_timed_out(self) -> None:
        self.read_timer = None
        log.info("connection closed: request head incomplete", timeout_s=self.head_timeout_s)
        # As at a graceful shutdown: closed now if no answer is being written, or else right
        # after that answer (a pipelined head that stalls does not cut short the one before).
        self.shutdown()

    def _body_timed_out(self) -> None:
        self.read_timer = None
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            # The server holds the body back, not the client: reading is paused while a
            # pipelined request waits for the answer before it, or while the app has not taken
            # the body read so far, and a client that expects ``100 Continue`` waits for the
            # app to ask for the body. The client gets its time again.
            self._arm_read_timer(self.body_timeout_s, self._body_timed_out)
            return
        log.info("connection closed: request body incomplete", timeout_s=self.body_timeout_s)
        # Closed, not shut down: while the app waits for the body, ``shutdown()`` would only
        # end keep-alive. A closed transport makes uvicorn's ``connection_lost`` mark the
        # request disconnected, so the app's ``receive()`` returns ``http.disconnect`` and the
        # request gives back its place under the cap.
        self.transport.close()

    def _refuse_head_too_large(self) -> None:
        self._cancel_read_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind an answer still being written: a 431 now would land
            # inside that answer, so the connection just ends.
            self.transport.close()
            return
        request_id = f"urn:uuid:{uuid.uuid4()}"
        detail = f"the request head exceeds {self.head_bytes_max} bytes; the rest was not read"
        body = problem_body("request_header_fields_too_large", detail, request_id)
        log.warning("request refused: head too large", request_id=request_id, status=431)
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    *(
                        name + b": " + value + b"\r\n"
                        for name, value in self.server_state.default_headers
                    ),
                    b"content-type: application/problem+json\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"x-request-id: " + request_id.encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
