"""A webhook receiver on a loopback socket: records every request and answers as a test says.

It speaks just enough HTTP/1.1 for one request per connection (``Connection: close``), plain or
over TLS, and counts the connections it accepted, so a test can tell that nothing reached it.
``tls_for(name)`` makes a certificate for a host name and the client context that trusts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HEAD_BYTES_MAX = 65_536
BODY_BYTES_MAX = 1_048_576
READ_TIMEOUT_S = 5


@dataclass(frozen=True)
class Hit:
    """One request as it arrived."""

    method: str
    target: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Answering = Callable[[Hit], Awaitable[Answer]]


async def ok(hit: Hit) -> Answer:
    return Answer()


def always(status: int, **headers: str) -> Answering:
    """Every request answered with ``status`` (header names with ``_`` for ``-``)."""

    async def answer(hit: Hit) -> Answer:
        return Answer(status, {name.replace("_", "-"): value for name, value in headers.items()})

    return answer


def in_turn(*answers: Answer) -> Answering:
    """The answers in order, per ``webhook-id``; the last one for every request after."""
    seen: dict[str, int] = {}

    async def answer(hit: Hit) -> Answer:
        n = seen.get(hit.headers.get("webhook-id", ""), 0)
        seen[hit.headers.get("webhook-id", "")] = n + 1
        return answers[min(n, len(answers) - 1)]

    return answer


class Receiver:
    """``async with Receiver(answer) as receiver``: listening on 127.0.0.1 at ``port``."""

    def __init__(self, answer: Answering = ok, *, tls: ssl.SSLContext | None = None) -> None:
        self._answer = answer
        self._tls = tls
        self.hits: list[Hit] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/hooks/clearhouse", host: str = "127.0.0.1") -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def ids(self) -> list[str]:
        return [hit.headers["webhook-id"] for hit in self.hits]

    async def wait_for_hits(self, count: int, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.hits) >= count)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                hit = await self._read(reader)
            async with self._arrived:
                self.hits.append(hit)
                self._arrived.notify_all()
            answer = await self._answer(hit)
            lines = [f"HTTP/1.1 {answer.status} Answer", "Content-Length: 0", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in answer.headers.items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ssl.SSLError):
            pass  # a client that went away or never spoke HTTP: counted, not recorded
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Hit:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEAD_BYTES_MAX:
            raise ConnectionError("request head too long")
        request_line, *fields = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in fields:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > BODY_BYTES_MAX:
            raise ConnectionError("request body too long")
        body = await reader.readexactly(length)
        return Hit(method, target, headers, body)


@dataclass(frozen=True)
class Tls:
    """A server context with a certificate for ``name``, and a client context that trusts it."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    certificate_pem: str


def tls_for(name: str) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    with tempfile.TemporaryDirectory() as folder:
        cert_file = Path(folder) / "cert.pem"
        key_file = Path(folder) / "key.pem"
        cert_file.write_bytes(pem)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=pem.decode())
    return Tls(server, client, pem.decode())
