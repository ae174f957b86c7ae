"""The limits at the socket, against a real ``clearhouse serve`` on a loopback port.

Raw sockets play the attacker of the finding: a request head of many megabytes, a head sent a
byte a second, a connection that sends nothing, a body sent a byte at a time. Every test is
bounded in time and in bytes.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest

from tests.web.harness import assert_problem

CLEARHOUSE: Final = str(Path(sys.executable).parent / "clearhouse")
HEADER_TIMEOUT_S: Final = 2
"""The server's ``CLEARHOUSE_HEADER_TIMEOUT_S`` in these tests (10 by default)."""
CLOSED_WITHIN_S: Final = 3 * HEADER_TIMEOUT_S
BODY_TIMEOUT_S: Final = 2
"""The server's ``CLEARHOUSE_BODY_TIMEOUT_S`` in these tests (10 by default)."""
BODY_CLOSED_WITHIN_S: Final = 3 * BODY_TIMEOUT_S
ATTACK_BYTES: Final = 32 * 1024 * 1024
"""The size of the header the finding sent."""
KIB: Final = 1024
PACE_S: Final = 0.02
"""How long the attacker waits for an answer between two writes of a large header."""
SLOW_HEAD: Final = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
"""The start of a head whose header value then comes a byte a second."""
ISSUE_HEAD: Final = (
    b"POST /v1/transactions/issue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)
"""The head of an (unsigned) issue whose body length is filled in; the app reads a JSON body
whole before it answers, so while the body is missing the request holds its place."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a ``clearhouse serve`` with 2 s header and body timeouts and the default
    limits."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("serve")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(folder / "data"),
        "CLEARHOUSE_LOG_LEVEL": "WARNING",
        "CLEARHOUSE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CLEARHOUSE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "CLEARHOUSE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        # The run's database is every test's: a delivery worker here would take theirs.
        "CLEARHOUSE_WEBHOOK_WORKERS": "0",
    }
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLEARHOUSE, "serve", "--port", str(port)],
            env=environment,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                raise AssertionError(log_path.read_text())
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _read_until_closed(connection: socket.socket, within_s: float) -> bytes:
    """Everything the server sends until it closes the connection (reset counts as closed)."""
    received = bytearray()
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not select.select([connection], [], [], 0.2)[0]:
            continue
        try:
            chunk = connection.recv(64 * KIB)
        except ConnectionResetError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk
    raise AssertionError(f"the connection is still open after {within_s} s")


def _split(answer: bytes) -> tuple[bytes, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status_line.encode(), {k.lower(): v for k, v in headers.items()}, body


def _send_until_answered(connection: socket.socket, total_bytes: int) -> int:
    """Send up to ``total_bytes`` of header value in 64 KiB writes, each after a short wait for
    an answer, and stop once the server answers or closes; the bytes the kernel took.

    The wait keeps what sits unread in the kernel's buffers small (loopback buffers may hold
    megabytes), so the count is close to what the server was offered before it answered."""
    padding = b"a" * (64 * KIB)
    sent = 0
    deadline = time.monotonic() + 20
    while sent < total_bytes and time.monotonic() < deadline:
        if select.select([connection], [], [], PACE_S)[0]:
            break
        try:
            sent += connection.send(padding)
        except (BrokenPipeError, ConnectionResetError):
            break
    return sent


def _trickle_until_closed(
    connection: socket.socket,
    started: float,
    pace_s: float = 1,
    within_s: float = CLOSED_WITHIN_S,
) -> float:
    """Send a byte every ``pace_s`` until the server closes, with no answer, within
    ``within_s``; the seconds since ``started``."""
    while time.monotonic() - started < within_s:
        if select.select([connection], [], [], pace_s)[0]:
            try:
                answer = connection.recv(64 * KIB)
            except ConnectionResetError:
                answer = b""
            assert answer == b"", f"an answer to a request never completed: {answer!r}"
            return time.monotonic() - started
        try:
            connection.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
    raise AssertionError(f"the connection is still open after {within_s} s")


def _read_answer(connection: socket.socket) -> bytes:
    """One answer with a ``content-length``, read whole (within the socket's 5 s timeout)."""
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < int(
        _split(answer)[1]["content-length"]
    ):
        chunk = connection.recv(64 * KIB)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer


def test_a_32_mb_request_header_is_cut_off_with_431_long_before_its_end(server: int) -> None:
    with _connect(server) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ")
        sent = _send_until_answered(connection, ATTACK_BYTES)
        assert sent < ATTACK_BYTES // 8, f"{sent:,} header bytes were taken without an answer"
        answer = _read_until_closed(connection, within_s=5)

    if answer:  # a reset may swallow the answer; the connection is closed either way
        status_line, headers, body = _split(answer)
        assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        problem = json.loads(body[: int(headers["content-length"])])
        assert problem["code"] == "request_header_fields_too_large"
        assert problem["type"] == "/problems/request_header_fields_too_large"
        assert problem["status"] == 431
        assert problem["instance"].startswith("urn:uuid:")
        assert problem["instance"] == headers["x-request-id"]


def test_a_connection_that_trickles_its_headers_is_closed_within_the_timeout(server: int) -> None:
    with _connect(server) as connection:
        started = time.monotonic()
        connection.sendall(SLOW_HEAD)
        closed_after = _trickle_until_closed(connection, started)

    assert closed_after >= HEADER_TIMEOUT_S * 0.75, "closed before the timeout"


def test_a_keep_alive_connection_that_trickles_its_next_request_is_closed_within_the_timeout(
    server: int,
) -> None:
    with _connect(server) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while b'{"status":"ok"}' not in first:
            chunk = connection.recv(64 * KIB)
            assert chunk, f"closed after {first!r}"
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        connection.sendall(SLOW_HEAD)
        closed_after = _trickle_until_closed(connection, started)

    assert closed_after >= HEADER_TIMEOUT_S * 0.75, "closed before the timeout"


def test_a_connection_that_sends_nothing_is_closed_within_the_timeout(server: int) -> None:
    with _connect(server) as connection:
        started = time.monotonic()
        assert _read_until_closed(connection, within_s=CLOSED_WITHIN_S) == b""
        closed_after = time.monotonic() - started

    assert HEADER_TIMEOUT_S * 0.75 <= closed_after < CLOSED_WITHIN_S


def test_headers_over_the_apps_limit_but_under_the_sockets_get_the_apps_431(server: int) -> None:
    url = f"http://127.0.0.1:{server}/health"

    refused = httpx.get(url, headers={"X-Padding": "a" * (33 * KIB)}, timeout=5)
    served = httpx.get(url, headers={"X-Padding": "a" * (31 * KIB)}, timeout=5)

    assert_problem(refused, 431, "request_header_fields_too_large")
    assert served.status_code == 200, served.text


def test_a_request_whose_body_trickles_is_closed_within_the_body_timeout(server: int) -> None:
    with _connect(server) as connection:
        connection.sendall(ISSUE_HEAD % 1000 + b"{")
        started = time.monotonic()
        closed_after = _trickle_until_closed(
            connection, started, pace_s=0.5, within_s=BODY_CLOSED_WITHIN_S
        )

    assert closed_after >= BODY_TIMEOUT_S * 0.75, "closed before the timeout"


def test_a_body_that_arrives_in_time_is_answered_and_its_connection_kept(server: int) -> None:
    body = json.dumps({"member_id": "m-1", "points": 10}).encode()
    with _connect(server) as connection:
        # Half now and half a while later, but all of it within the body timeout.
        connection.sendall(ISSUE_HEAD % len(body) + body[:10])
        time.sleep(BODY_TIMEOUT_S / 2)
        connection.sendall(body[10:])
        status_line, _, _ = _split(_read_answer(connection))
        assert status_line == b"HTTP/1.1 401 Unauthorized"  # unsigned, but answered

        # Idle past the body timeout (within uvicorn's 5 s keep-alive): the body's timer
        # stopped with its message, so the connection serves a next request.
        time.sleep(BODY_TIMEOUT_S * 1.25)
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status_line, _, body_read = _split(_read_answer(connection))

    assert status_line == b"HTTP/1.1 200 OK"
    assert body_read == b'{"status":"ok"}'
