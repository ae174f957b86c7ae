"""The partner client: what a partner's developers install to call Clearhouse.

Every request is signed with the partner's Ed25519 key (RFC 9421): a fresh nonce, ``created``,
``Content-Digest`` of the body (RFC 9530), and an ``Idempotency-Key`` on every POST that stays
the same across retries. Every response is checked against the coalition's signature, a receipt
that covers the request's own signature. Problems become typed exceptions.

    from clearhouse.client import PartnerClient

    with PartnerClient("http://127.0.0.1:8000", key_id="baeckerei-1", private_key=pem) as client:
        entry = client.issue("m-1001", 120, reference="receipt 4711")
        client.redeem("m-1001", 20, reference="receipt 4712")

``AsyncPartnerClient`` offers the same methods as coroutines.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self
from uuid import UUID

import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from clearhouse.crypto.ed25519 import load_private_key
from clearhouse.crypto.http_signatures import (
    HeaderFields,
    InvalidSignature,
    RequestMessage,
    ResponseMessage,
    parse_dictionary,
    sign_message,
    verify_signature,
)

REQUEST_LABEL: Final = "sig1"
RETRY_ATTEMPTS: Final = 4


class Entry(msgspec.Struct, frozen=True):
    """An entry as Clearhouse returns it."""

    entry_id: UUID
    kind: str
    partner_id: str | None
    member_id: str | None
    points: int
    period: str
    occurred_at: datetime | None
    recorded_at: datetime
    reference: str | None
    reversal_of: UUID | None
    contract_version: int | None
    member_balance: int | None = None


class EntryPage(msgspec.Struct, frozen=True):
    entries: list[Entry]
    next_cursor: str | None


class ClearhouseProblem(Exception):
    """An RFC 9457 problem answered by Clearhouse; ``code`` is stable, ``detail`` for people."""

    def __init__(self, status: int, code: str, detail: str, instance: str | None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.instance = instance


class InvalidRequest(ClearhouseProblem):
    """400: the request is malformed or holds a bad value."""


class SignatureRejected(ClearhouseProblem):
    """401: the request's signature, key, freshness, nonce or digest was refused."""


class Forbidden(ClearhouseProblem):
    """403: not allowed, or not for this purpose, or no consent."""


class NotFound(ClearhouseProblem):
    """404: unknown, or another partner's."""


class Conflict(ClearhouseProblem):
    """409: e.g. ``insufficient_points``, ``idempotency_key_in_use``."""


class Unprocessable(ClearhouseProblem):
    """422: e.g. ``idempotency_key_reused``, ``limit_exceeded``, ``unknown_member``."""


class Unavailable(ClearhouseProblem):
    """503: the service could not reach its database; nothing was written. Retried."""


class ResponseNotSigned(Exception):
    """The response's receipt signature is absent or does not verify: do not trust it."""


class UnknownReceiptKey(ResponseNotSigned):
    """The receipt names a coalition key the client does not know."""


_PROBLEM_CLASSES: Final[Mapping[int, type[ClearhouseProblem]]] = {
    400: InvalidRequest,
    401: SignatureRejected,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: Unprocessable,
    503: Unavailable,
}

_RETRIED: Final = (httpx.TransportError, Unavailable)


def _problem(response: httpx.Response) -> ClearhouseProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    cls = _PROBLEM_CLASSES.get(response.status_code, ClearhouseProblem)
    return cls(
        response.status_code,
        str(body.get("code", "unknown")),
        str(body.get("detail", response.reason_phrase)),
        body.get("instance"),
    )


class _Signer:
    """Signs requests and checks receipts; shared by the sync and async clients."""

    def __init__(
        self,
        key_id: str,
        private_key: Ed25519PrivateKey | bytes,
        coalition_keys: Mapping[str, bytes] | None,
    ) -> None:
        self.key_id = key_id
        self.private_key = (
            private_key
            if isinstance(private_key, Ed25519PrivateKey)
            else load_private_key(private_key)
        )
        self.coalition_keys: dict[str, bytes] = dict(coalition_keys or {})
        self.pinned = coalition_keys is not None
        """Pinned keys are the only ones trusted; fetched ones are fetched again when a receipt
        names a key they lack (the coalition rotated its key)."""

    def sign(self, request: httpx.Request) -> None:
        body = request.content
        covered = ["@method", "@target-uri"]
        if body or request.method in {"POST", "PUT", "PATCH"}:
            covered += ["content-type", "content-digest"]
        if "idempotency-key" in request.headers:
            covered.append("idempotency-key")
        if "data-purpose" in request.headers:
            covered.append("data-purpose")
        for name in ("signature", "signature-input", "content-digest"):
            request.headers.pop(name, None)
        message = RequestMessage(
            request.method, str(request.url), HeaderFields(request.headers.multi_items())
        )
        sign_message(
            message,
            key_id=self.key_id,
            private_key=self.private_key,
            covered=covered,
            label=REQUEST_LABEL,
            body=body if "content-digest" in covered else None,
            nonce=secrets.token_urlsafe(24),
            created=datetime.now(UTC),
        )
        for name in ("Signature-Input", "Signature", "Content-Digest"):
            value = message.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def answer(self, response: httpx.Response) -> None:
        """Raise the problem of an answer (unsigned refusals first), or check its receipt."""
        if response.status_code >= 400 and "signature" not in response.headers:
            raise _problem(response)
        self.check_receipt(response)
        if response.status_code >= 400:
            raise _problem(response)

    def check_receipt(self, response: httpx.Response) -> None:
        """Verify the coalition's signature over status, body digest and our signature."""
        fields = HeaderFields(response.headers.multi_items())
        signature_input = fields.get("signature-input")
        digest = fields.get("content-digest")
        if signature_input is None or digest is None:
            raise ResponseNotSigned("the response carries no receipt signature")
        try:
            members = parse_dictionary(signature_input)
            parsed_digest = parse_dictionary(digest)
        except ValueError as exc:
            raise ResponseNotSigned("the receipt's fields are malformed") from exc
        if len(members) != 1:
            raise ResponseNotSigned("the receipt must hold exactly one signature")
        (_, params) = next(iter(members.values()))
        key_id = str(params.get("keyid"))
        public_key = self.coalition_keys.get(key_id)
        if public_key is None:
            raise UnknownReceiptKey(f"the receipt is signed by an unknown key {key_id!r}")
        expected = hashlib.sha256(response.content).digest()
        if "sha-256" not in parsed_digest:
            raise ResponseNotSigned("the receipt's Content-Digest lacks sha-256")
        if not hmac.compare_digest(parsed_digest["sha-256"][0], expected):
            raise ResponseNotSigned("the response body does not match its Content-Digest")
        request = response.request
        message = ResponseMessage(
            response.status_code,
            fields,
            RequestMessage(
                request.method, str(request.url), HeaderFields(request.headers.multi_items())
            ),
        )
        try:
            covered = verify_signature(message, key_id, public_key)
        except InvalidSignature as exc:
            raise ResponseNotSigned(f"the receipt does not verify: {exc}") from exc
        if f'"signature";req;key="{REQUEST_LABEL}"' not in covered:
            raise ResponseNotSigned("the receipt does not cover the request's signature")


def _decode_keys(response: httpx.Response) -> dict[str, bytes]:
    keys = response.json()["keys"]
    return {k["key_id"]: base64.b64decode(k["public_key"]) for k in keys}


class _Calls:
    """The requests of every operation, built once for the sync and the async client."""

    def __init__(self, http: httpx.Client | httpx.AsyncClient) -> None:
        self._http = http

    def _json(
        self,
        method: str,
        path: str,
        *,
        purpose: str | None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Request:
        headers: dict[str, str] = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if purpose is not None:
            headers["Data-Purpose"] = purpose
        return self._http.build_request(
            method, path, content=content, headers=headers, params=params
        )

    def points(
        self,
        kind: str,
        member_id: str,
        points: int,
        reference: str,
        occurred_at: datetime | None,
        metadata: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> httpx.Request:
        moment = (occurred_at or datetime.now(UTC)).astimezone(UTC)
        body: dict[str, Any] = {
            "member_id": member_id,
            "points": points,
            "occurred_at": moment.isoformat().replace("+00:00", "Z"),
            "reference": reference,
        }
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._json(
            "POST",
            f"/v1/transactions/{kind}",
            purpose="accrual" if kind == "issue" else "redemption",
            body=body,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def reversal(
        self, entry: Entry, reason: str, points: int | None, idempotency_key: str | None
    ) -> httpx.Request:
        body: dict[str, Any] = {"reason": reason}
        if points is not None:
            body["points"] = points
        return self._json(
            "POST",
            f"/v1/transactions/{entry.entry_id}/reversals",
            purpose="accrual" if entry.kind == "issue" else "redemption",
            body=body,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def entry(self, entry_id: UUID | str) -> httpx.Request:
        return self._json("GET", f"/v1/transactions/{entry_id}", purpose="settlement")

    def page(self, period: str, page_size: int, cursor: str | None) -> httpx.Request:
        params: dict[str, Any] = {"period": period, "limit": page_size}
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/v1/transactions", purpose="settlement", params=params)

    def enrol(
        self,
        member_id: str | None,
        personal: Mapping[str, str] | None,
        consents: Sequence[Mapping[str, Any]],
        idempotency_key: str | None,
    ) -> httpx.Request:
        body: dict[str, Any] = {"consents": [dict(c) for c in consents]}
        if member_id is not None:
            body["member_id"] = member_id
        if personal:
            body["personal"] = dict(personal)
        return self._json(
            "POST",
            "/v1/members",
            purpose="enrolment",
            body=body,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def member(self, member_id: str, purpose: str) -> httpx.Request:
        return self._json("GET", f"/v1/members/{member_id}", purpose=purpose)

    def consents(self, member_id: str, consents: Sequence[Mapping[str, Any]]) -> httpx.Request:
        return self._json(
            "PUT",
            f"/v1/members/{member_id}/consents",
            purpose="consent_management",
            body={"consents": list(consents)},
        )


def _entry(response: httpx.Response) -> Entry:
    return msgspec.json.decode(response.content, type=Entry)


def _page(response: httpx.Response) -> EntryPage:
    return msgspec.json.decode(response.content, type=EntryPage)


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
        self._signer = _Signer(key_id, private_key, coalition_keys)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)
        self._calls = _Calls(self._http)

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
        return _decode_keys(response)

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
        return _entry(self._send(call))

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
        return _entry(self._send(call))

    def reverse(
        self,
        entry: Entry,
        *,
        reason: str,
        points: int | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        """Reverse all (``points=None``) or part of what remains of one of our entries."""
        return _entry(self._send(self._calls.reversal(entry, reason, points, idempotency_key)))

    def entry(self, entry_id: UUID | str) -> Entry:
        return _entry(self._send(self._calls.entry(entry_id)))

    def entries(self, period: str, *, page_size: int = 500) -> Iterator[Entry]:
        """All our entries of ``period`` (``YYYY-MM``), page by page."""
        cursor: str | None = None
        while True:
            page = _page(self._send(self._calls.page(period, page_size, cursor)))
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
        self._signer = _Signer(key_id, private_key, coalition_keys)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)
        self._calls = _Calls(self._http)

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
        return _decode_keys(response)

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
        return _entry(await self._send(call))

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
        return _entry(await self._send(call))

    async def reverse(
        self,
        entry: Entry,
        *,
        reason: str,
        points: int | None = None,
        idempotency_key: str | None = None,
    ) -> Entry:
        call = self._calls.reversal(entry, reason, points, idempotency_key)
        return _entry(await self._send(call))

    async def entry(self, entry_id: UUID | str) -> Entry:
        return _entry(await self._send(self._calls.entry(entry_id)))

    async def entries(self, period: str, *, page_size: int = 500) -> AsyncIterator[Entry]:
        cursor: str | None = None
        while True:
            page = _page(await self._send(self._calls.page(period, page_size, cursor)))
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
