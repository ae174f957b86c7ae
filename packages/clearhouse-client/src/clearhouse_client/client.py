"""The partner client, synchronous and asynchronous: one method per operation of the partner
API, each signed, retried when it is safe to, its receipt checked, its refusal raised.

A call is retried on network errors and ``503 unavailable``, up to ``RETRY_ATTEMPTS`` attempts
with exponential backoff, with the same body and ``Idempotency-Key``: a retry after a lost
answer gets the first answer back and never books twice. Every attempt is signed afresh (a new
nonce and ``created``), since resending a signed request as it was would be a replay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self
from uuid import UUID

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from clearhouse_client.errors import Unavailable, UnknownReceiptKey
from clearhouse_client.operations import (
    BatchItem,
    BatchResult,
    Calls,
    Entry,
    Hold,
    batch_of,
    entry_of,
    hold_of,
    hold_page_of,
    keys_of,
    page_of,
)
from clearhouse_client.signing import Signer

RETRY_ATTEMPTS: Final = 4

_RETRIED: Final = (httpx.TransportError, Unavailable)


def _hold_id(hold: Hold | UUID | str) -> UUID | str:
    return hold.hold_id if isinstance(hold, Hold) else hold


class PartnerClient:
    """Synchronous client. ``coalition_keys`` pins the coalition's public keys (recommended);
    without it the client fetches ``GET /v1/keys`` once and trusts what it gets."""

    def __init__(
        self,
        base_url: str,
        *,
        key_id: str,
        private_key: Ed25519PrivateKey | bytes,
        coalition_keys: Mapping[str, bytes] | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._signer = Signer(key_id, private_key, coalition_keys)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)
        self._calls = Calls(self._http)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def coalition_keys(self) -> dict[str, bytes]:
        """The coalition's public keys (``GET /v1/keys``, unsigned)."""
        response = self._http.get("/v1/keys")
        response.raise_for_status()
        return keys_of(response)

    def _send(self, request: httpx.Request) -> httpx.Response:
        if not self._signer.coalition_keys:
            self._signer.coalition_keys = self.coalition_keys()
        for attempt in Retrying(
            retry=retry_if_exception_type(_RETRIED),
            stop=stop_after_attempt(RETRY_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=3),
            reraise=True,
        ):
            with attempt:
                self._signer.sign(request)  # fresh nonce and created on every attempt
                response = self._http.send(request)
                try:
                    self._signer.answer(response)
                except UnknownReceiptKey:
                    if self._signer.pinned:
                        raise
                    self._signer.coalition_keys = self.coalition_keys()
                    self._signer.answer(response)
        return response

    def issue(
        self,
        member_id: str,
        points: int,
        *,
        reference: str,
        occurred_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        """Issue ``points`` to the member; retries reuse the same Idempotency-Key."""
        call = self._calls.points(
            "issue", member_id, points, reference, occurred_at, metadata, idempotency_key
        )
        return entry_of(self._send(call))

    def redeem(
        self,
        member_id: str,
        points: int,
        *,
        reference: str,
        occurred_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        """Redeem ``points`` of the member; ``Conflict`` with code insufficient_points if short."""
        call = self._calls.points(
            "redeem", member_id, points, reference, occurred_at, metadata, idempotency_key
        )
        return entry_of(self._send(call))

    def batch(
        self,
        items: Sequence[BatchItem],
        *,
        atomic: bool = False,
        idempotency_key: str | None = None,
    ) -> BatchResult:
        """Issue or redeem up to 1,000 times in one request, each item under its own key; a
        refused item is in its result, the others stand. With ``atomic``, all or nothing: one
        item refused raises ``Conflict`` (``batch_not_applied``, its ``refused`` items)."""
        return batch_of(self._send(self._calls.batch(items, atomic, idempotency_key)))

    def reverse(
        self,
        entry: Entry,
        *,
        reason: str,
        points: int | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        """Reverse all (``points=None``) or part of what remains of one of our entries."""
        return entry_of(self._send(self._calls.reversal(entry, reason, points, idempotency_key)))

    def entry(self, entry_id: UUID | str) -> Entry:
        return entry_of(self._send(self._calls.entry(entry_id)))

    def entries(self, period: str, *, page_size: int = 500) -> Iterator[Entry]:
        """All our entries of ``period`` (``YYYY-MM``), page by page."""
        cursor: str | None = None
        while True:
            page = page_of(self._send(self._calls.page(period, page_size, cursor)))
            yield from page.entries
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def enrol(
        self,
        *,
        member_id: str | None = None,
        personal: Mapping[str, str] | None = None,
        consents: Sequence[Mapping[str, Any]] = (),
        idempotency_key: str | None = None,
    ) -> str:
        """Enrol a member (Data-Purpose: enrolment); returns the member id."""
        call = self._calls.enrol(member_id, personal, consents, idempotency_key)
        return str(self._send(call).json()["member_id"])

    def member(self, member_id: str, *, purpose: str) -> dict[str, Any]:
        """The member as ``purpose`` allows: only the fields the contract grants for it."""
        result: dict[str, Any] = self._send(self._calls.member(member_id, purpose)).json()
        return result

    def set_consents(
        self, member_id: str, consents: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Record consents given or withdrawn (``{"purpose": ..., "granted": ...}``)."""
        response = self._send(self._calls.consents(member_id, consents))
        history: list[dict[str, Any]] = response.json()["consents"]
        return history

    def authorize(
        self,
        member_id: str,
        points: int,
        *,
        reference: str,
        hold_seconds: int | None = None,
        occurred_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Reserve ``points`` of the member's available points (a hold); ``Conflict`` with code
        insufficient_points if short."""
        call = self._calls.authorize(
            member_id, points, reference, hold_seconds, occurred_at, metadata, idempotency_key
        )
        return hold_of(self._send(call))

    def capture(
        self,
        hold: Hold | UUID | str,
        points: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Redeem ``points`` of the hold (all it reserved when None); the rest is released. The
        answer's ``entry`` is the redeem entry. ``HoldNotOpen`` when the hold has ended."""
        call = self._calls.capture(_hold_id(hold), points, idempotency_key)
        return hold_of(self._send(call))

    def void(
        self,
        hold: Hold | UUID | str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Release all the hold reserved. ``HoldNotOpen`` when the hold has ended."""
        return hold_of(self._send(self._calls.void(_hold_id(hold), reason, idempotency_key)))

    def hold(self, hold_id: UUID | str) -> Hold:
        """One of our holds as it is now."""
        return hold_of(self._send(self._calls.hold(hold_id)))

    def holds(self, *, status: str | None = None, page_size: int = 500) -> Iterator[Hold]:
        """Our holds (``open``, ``captured``, ``voided``, ``expired`` or all), oldest first."""
        cursor: str | None = None
        while True:
            page = hold_page_of(self._send(self._calls.holds_page(status, page_size, cursor)))
            yield from page.holds
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def add_webhook_endpoint(
        self, url: str, event_types: Sequence[str], *, hmac_secret: bool = False
    ) -> dict[str, Any]:
        """Register a webhook endpoint; with ``hmac_secret`` the answer holds its ``whsec_``
        secret, shown this once."""
        endpoint: dict[str, Any] = self._send(
            self._calls.webhook_endpoint(url, event_types, hmac_secret)
        ).json()
        return endpoint

    def test_webhook_endpoint(self, endpoint_id: str) -> str:
        """Send a test event to the endpoint alone; its event id (the ``webhook-id``)."""
        return str(self._send(self._calls.webhook_test(endpoint_id)).json()["event_id"])

    def events(
        self, *, after: str | None = None, page_size: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Our events after the cursor ``after`` (all when None), and the cursor to go on from."""
        page = self._send(self._calls.events_page(after, page_size)).json()
        return list(page["events"]), str(page["next_cursor"])


class AsyncPartnerClient:
    """The same as ``PartnerClient``, with coroutines."""

    def __init__(
        self,
        base_url: str,
        *,
        key_id: str,
        private_key: Ed25519PrivateKey | bytes,
        coalition_keys: Mapping[str, bytes] | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._signer = Signer(key_id, private_key, coalition_keys)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._calls = Calls(self._http)

    async def __aenter__(self) -> Self:
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

    async def coalition_keys(self) -> dict[str, bytes]:
        response = await self._http.get("/v1/keys")
        response.raise_for_status()
        return keys_of(response)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        if not self._signer.coalition_keys:
            self._signer.coalition_keys = await self.coalition_keys()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_RETRIED),
            stop=stop_after_attempt(RETRY_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=3),
            reraise=True,
        ):
            with attempt:
                self._signer.sign(request)
                response = await self._http.send(request)
                try:
                    self._signer.answer(response)
                except UnknownReceiptKey:
                    if self._signer.pinned:
                        raise
                    self._signer.coalition_keys = await self.coalition_keys()
                    self._signer.answer(response)
        return response

    async def issue(
        self,
        member_id: str,
        points: int,
        *,
        reference: str,
        occurred_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        call = self._calls.points(
            "issue", member_id, points, reference, occurred_at, metadata, idempotency_key
        )
        return entry_of(await self._send(call))

    async def redeem(
        self,
        member_id: str,
        points: int,
        *,
        reference: str,
        occurred_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        call = self._calls.points(
            "redeem", member_id, points, reference, occurred_at, metadata, idempotency_key
        )
        return entry_of(await self._send(call))

    async def batch(
        self,
        items: Sequence[BatchItem],
        *,
        atomic: bool = False,
        idempotency_key: str | None = None,
    ) -> BatchResult:
        """Issue or redeem up to 1,000 times in one request, each item under its own key; a
        refused item is in its result, the others stand. With ``atomic``, all or nothing: one
        item refused raises ``Conflict`` (``batch_not_applied``, its ``refused`` items)."""
        return batch_of(await self._send(self._calls.batch(items, atomic, idempotency_key)))

    async def reverse(
        self,
        entry: Entry,
        *,
        reason: str,
        points: int | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        call = self._calls.reversal(entry, reason, points, idempotency_key)
        return entry_of(await self._send(call))

    async def entry(self, entry_id: UUID | str) -> Entry:
        return entry_of(await self._send(self._calls.entry(entry_id)))

    async def entries(self, period: str, *, page_size: int = 500) -> AsyncIterator[Entry]:
        cursor: str | None = None
        while True:
            page = page_of(await self._send(self._calls.page(period, page_size, cursor)))
            for entry in page.entries:
                yield entry
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def enrol(
        self,
        *,
        member_id: str | None = None,
        personal: Mapping[str, str] | None = None,
        consents: Sequence[Mapping[str, Any]] = (),
        idempotency_key: str | None = None,
    ) -> str:
        call = self._calls.enrol(member_id, personal, consents, idempotency_key)
        return str((await self._send(call)).json()["member_id"])

    async def member(self, member_id: str, *, purpose: str) -> dict[str, Any]:
        response = await self._send(self._calls.member(member_id, purpose))
        result: dict[str, Any] = response.json()
        return result

    async def set_consents(
        self, member_id: str, consents: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        response = await self._send(self._calls.consents(member_id, consents))
        history: list[dict[str, Any]] = response.json()["consents"]
        return history

    async def authorize(
        self,
        member_id: str,
        points: int,
        *,
        reference: str,
        hold_seconds: int | None = None,
        occurred_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        call = self._calls.authorize(
            member_id, points, reference, hold_seconds, occurred_at, metadata, idempotency_key
        )
        return hold_of(await self._send(call))

    async def capture(
        self,
        hold: Hold | UUID | str,
        points: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Hold:
        call = self._calls.capture(_hold_id(hold), points, idempotency_key)
        return hold_of(await self._send(call))

    async def void(
        self,
        hold: Hold | UUID | str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        call = self._calls.void(_hold_id(hold), reason, idempotency_key)
        return hold_of(await self._send(call))

    async def hold(self, hold_id: UUID | str) -> Hold:
        return hold_of(await self._send(self._calls.hold(hold_id)))

    async def holds(
        self, *, status: str | None = None, page_size: int = 500
    ) -> AsyncIterator[Hold]:
        cursor: str | None = None
        while True:
            call = self._calls.holds_page(status, page_size, cursor)
            page = hold_page_of(await self._send(call))
            for hold in page.holds:
                yield hold
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def add_webhook_endpoint(
        self, url: str, event_types: Sequence[str], *, hmac_secret: bool = False
    ) -> dict[str, Any]:
        response = await self._send(self._calls.webhook_endpoint(url, event_types, hmac_secret))
        endpoint: dict[str, Any] = response.json()
        return endpoint

    async def test_webhook_endpoint(self, endpoint_id: str) -> str:
        response = await self._send(self._calls.webhook_test(endpoint_id))
        return str(response.json()["event_id"])

    async def events(
        self, *, after: str | None = None, page_size: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        page = (await self._send(self._calls.events_page(after, page_size))).json()
        return list(page["events"]), str(page["next_cursor"])
