"""Delivering webhooks: the workers of ``serve`` that send each event to its partner's endpoints.

A worker claims due deliveries (``storage.webhooks.claim``: a lease and the attempt counted,
committed before any call goes out), attempts them side by side, and records each result in a
transaction of its own (``storage.webhooks.record``), where the rules of ``domain.webhooks``
decide what comes next. A worker that dies anywhere in between leaves a lease that runs out, and
another worker attempts the delivery again with the same ``webhook-id``: every event arrives at
least once, and a receiver deduplicates by that id.

An attempt resolves the endpoint's host itself, checks every address it got (``url_problems``)
and connects to the first of them, naming the host only in the ``Host`` header and, for https,
in TLS (SNI, and the certificate is checked against that name). No second lookup happens on
the way, so a name that resolved to a public address at registration and to an inner one now
(DNS rebinding) is refused, as a failed attempt that says why. The body is the stored event's
bytes, as signed; no redirect is followed, no proxy of the environment is used, no connection
is kept for another attempt, and the answer's body is not read. An attempt ends after 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import random as randoms
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Final

import asyncpg
import httpx
import structlog

from clearhouse import __version__
from clearhouse.crypto.aead import DecryptionFailed
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.crypto.webhooks import open_secret, signature_headers
from clearhouse.domain.errors import ClearhouseError
from clearhouse.domain.webhooks import (
    ATTEMPT_TIMEOUT_S,
    Attempt,
    DueDelivery,
    Random,
    Target,
    decide,
    target_of,
    url_problems,
)
from clearhouse.services.database import Database
from clearhouse.storage import webhooks as store
from clearhouse.storage.webhooks import Recorded

CLAIM_BATCH: Final = 16
"""Deliveries one worker claims and attempts at once."""
POLL_INTERVAL_S: Final = 1.0
"""How long an idle worker waits before it looks for due deliveries again."""
USER_AGENT: Final = f"Clearhouse-Webhooks/{__version__}"

log = structlog.get_logger("clearhouse.webhooks")

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""The addresses a host name resolves to, for a port."""
Clock = Callable[[], datetime]


async def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host``, each once, in its order."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def real_now() -> datetime:
    return datetime.now(UTC)


class DeliveryWorker:
    """One worker: claims due deliveries, attempts them, records what came of each.

    ``clock`` is the time the decisions and ``webhook-timestamp`` use (the real one: never the
    sandbox's ledger clock); tests give their own, and their own ``resolver``, ``random`` (the
    retry jitter) and ``tls`` (the certificates an https receiver is trusted by).
    """

    def __init__(
        self,
        database: Database,
        key: CoalitionKey,
        master_key: bytes,
        *,
        sandbox: bool,
        lease_s: float = 60,
        batch: int = CLAIM_BATCH,
        resolver: Resolver = resolve_host,
        clock: Clock = real_now,
        random: Random = randoms.random,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if lease_s <= 0 or batch < 1:
            raise ValueError("a worker needs a positive lease and batch")
        self._database = database
        self._key = key
        self._master_key = master_key
        self._sandbox = sandbox
        self._lease_s = lease_s
        self._batch = batch
        self._resolve = resolver
        self._clock = clock
        self._random = random
        self._http = httpx.AsyncClient(
            timeout=ATTEMPT_TIMEOUT_S,
            follow_redirects=False,
            trust_env=False,
            verify=True if tls is None else tls,
            # A fresh connection for every attempt: each connects to the address it checked,
            # and a connection made for one host name never carries another's request.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def __aenter__(self) -> DeliveryWorker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a database that fails is tried again after a pause."""
        try:
            while not stop.is_set():
                attempted = 0
                try:
                    attempted = await self.run_once()
                except* (ClearhouseError, asyncpg.PostgresError) as failed:
                    # A claim, or a result recorded, that did not reach the database: the
                    # leases run out and the deliveries are attempted again.
                    log.warning(
                        "webhook delivery failed",
                        error_types=sorted({type(e).__name__ for e in failed.exceptions}),
                    )
                if attempted == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), POLL_INTERVAL_S)
        finally:
            await self.aclose()

    async def run_once(self) -> int:
        """Claim what is due, attempt it all and record each result; how many were attempted."""
        due = await self.claim()
        async with asyncio.TaskGroup() as attempts:
            for delivery in due:
                attempts.create_task(self.deliver(delivery))
        return len(due)

    async def claim(self) -> list[DueDelivery]:
        async with self._database.driver_connection() as connection:
            return await store.claim(connection, self._lease_s, self._batch)

    async def deliver(self, delivery: DueDelivery) -> Recorded | None:
        """Attempt one claimed delivery and record the result."""
        return await self.record(delivery, await self.attempt(delivery))

    async def attempt(self, delivery: DueDelivery) -> Attempt:
        """Send the delivery once; what came of it (nothing is recorded)."""
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                return await self._send(delivery)
        except TimeoutError:
            return Attempt(error=f"no answer within {ATTEMPT_TIMEOUT_S} s")

    async def record(self, delivery: DueDelivery, attempt: Attempt) -> Recorded | None:
        """Record what came of an attempt; None when the claim had lapsed and another worker
        took the delivery over (its attempt counts, not this one)."""
        decision = decide(
            attempt,
            attempts_made=delivery.attempt,
            failing_since=delivery.failing_since,
            now=self._clock(),
            random=self._random,
        )
        async with self._database.transaction() as connection:
            recorded = await store.record(connection, delivery, decision, attempt.status)
        log.info(
            "webhook attempt",
            delivery_id=delivery.delivery_id,
            event_id=delivery.event_id,
            attempt=delivery.attempt,
            status=attempt.status,
            outcome=decision.verdict.value if recorded is not None else "superseded",
            reason=decision.reason,
        )
        if recorded is not None and recorded.endpoint_disabled_now:
            log.warning(
                "webhook endpoint disabled",
                endpoint_id=delivery.endpoint_id,
                reason=decision.disable_endpoint,
                cancelled=recorded.deliveries_cancelled,
            )
        return recorded

    async def _send(self, delivery: DueDelivery) -> Attempt:
        target = target_of(delivery.url)
        if target is None:
            return _refused(url_problems(delivery.url, [], sandbox=self._sandbox))
        if target.host_is_address:
            addresses: Sequence[str] = [target.host]
        else:
            try:
                addresses = await self._resolve(target.host, target.port)
            except OSError:
                return Attempt(error="the host did not resolve")
        problems = url_problems(delivery.url, addresses, sandbox=self._sandbox)
        if problems:
            return _refused(problems)
        try:
            secret = (
                None
                if delivery.sealed_secret is None
                else open_secret(self._master_key, delivery.endpoint_id, delivery.sealed_secret)
            )
        except DecryptionFailed:
            return Attempt(error="the endpoint's secret does not open under this master key")
        request = self._request(delivery, target, addresses[0], secret)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException:
            return Attempt(error=f"no answer within {ATTEMPT_TIMEOUT_S} s")
        except httpx.ConnectError:
            return Attempt(error=f"could not connect to {addresses[0]}")
        except httpx.TransportError as exc:
            return Attempt(error=f"the exchange failed ({type(exc).__name__})")
        try:
            return Attempt(
                status=response.status_code, retry_after=response.headers.get("retry-after")
            )
        finally:
            await response.aclose()

    def _request(
        self, delivery: DueDelivery, target: Target, address: str, secret: bytes | None
    ) -> httpx.Request:
        url = httpx.URL(delivery.url)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": url.netloc.decode("ascii"),
            **signature_headers(
                delivery.event_id,
                int(self._clock().timestamp()),
                delivery.body,
                self._key,
                secret,
            ),
        }
        extensions = {}
        if target.scheme == "https" and not target.host_is_address:
            extensions["sni_hostname"] = target.host
        return self._http.build_request(
            "POST",
            url.copy_with(host=address),
            content=delivery.body,
            headers=headers,
            extensions=extensions,
        )


def _refused(problems: Sequence[str]) -> Attempt:
    return Attempt(error="refused: " + "; ".join(problems))
