"""The requests of every operation and the types of their answers, built once for the sync and
the async client.

Each operation declares the ``Data-Purpose`` of its endpoint (``accrual`` for an issue,
``redemption`` for a redeem, that of the original for a reversal, ``settlement`` for reads of
entries); every POST carries an ``Idempotency-Key``, a new one unless the caller gives its own.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import msgspec


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


class Hold(msgspec.Struct, frozen=True):
    """A hold as Clearhouse returns it; after a change, with the member's points right after
    (``member_balance``, ``member_held``, ``member_available``) and a capture's ``entry``."""

    hold_id: UUID
    status: str
    partner_id: str
    member_id: str
    points: int
    reference: str
    occurred_at: datetime
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    captured_points: int | None
    capture_entry_id: UUID | None
    contract_version: int
    member_balance: int | None = None
    member_held: int | None = None
    member_available: int | None = None
    entry: Entry | None = None


class HoldPage(msgspec.Struct, frozen=True):
    holds: list[Hold]
    next_cursor: str | None


class BatchItem(msgspec.Struct, frozen=True, kw_only=True):
    """An issue or a redeem to send in a batch; its ``idempotency_key`` is made when absent."""

    kind: str
    """``issue`` or ``redeem``: a batch holds one of the two."""
    member_id: str
    points: int
    reference: str
    occurred_at: datetime | None = None
    metadata: Mapping[str, Any] | None = None
    idempotency_key: str | None = None


class ItemProblem(msgspec.Struct, frozen=True):
    """Why an item of a batch was refused: what a single request would have been answered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


class BatchItemResult(msgspec.Struct, frozen=True):
    """An item's result: ``201`` with its ``entry`` (``replayed`` by an earlier request under
    its key), or the ``status`` and ``problem`` that refused it."""

    index: int
    idempotency_key: str
    status: int
    entry: Entry | None = None
    replayed: bool | None = None
    problem: ItemProblem | None = None


class BatchResult(msgspec.Struct, frozen=True):
    """A batch's answer, item by item in the order sent."""

    atomic: bool
    posted: int
    refused: int
    results: list[BatchItemResult]


def batch_of(response: httpx.Response) -> BatchResult:
    return msgspec.json.decode(response.content, type=BatchResult)


def hold_of(response: httpx.Response) -> Hold:
    return msgspec.json.decode(response.content, type=Hold)


def hold_page_of(response: httpx.Response) -> HoldPage:
    return msgspec.json.decode(response.content, type=HoldPage)


def entry_of(response: httpx.Response) -> Entry:
    return msgspec.json.decode(response.content, type=Entry)


def page_of(response: httpx.Response) -> EntryPage:
    return msgspec.json.decode(response.content, type=EntryPage)


def keys_of(response: httpx.Response) -> dict[str, bytes]:
    """The coalition's public keys of a ``GET /v1/keys`` answer, raw bytes by key id."""
    keys = response.json()["keys"]
    # Only the keys that sign responses are receipts' keys (the webhook key is not).
    return {
        k["key_id"]: base64.b64decode(k["public_key"])
        for k in keys
        if "response" in k.get("use", ["response"])
    }


class Calls:
    """The requests of every operation, built on the client's own ``httpx`` client."""

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
        return self._json(
            "POST",
            f"/v1/transactions/{kind}",
            purpose="accrual" if kind == "issue" else "redemption",
            body=_points_body(member_id, points, reference, occurred_at, metadata),
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def batch(
        self, items: Sequence[BatchItem], atomic: bool, idempotency_key: str | None
    ) -> httpx.Request:
        """A batch of issues (purpose ``accrual``) or of redeems (``redemption``)."""
        kinds = {item.kind for item in items}
        if len(kinds) != 1 or not kinds <= {"issue", "redeem"}:
            raise ValueError("a batch holds only issues or only redeems, and at least one")
        body = {
            "atomic": atomic,
            "items": [
                {
                    "kind": item.kind,
                    "idempotency_key": item.idempotency_key or str(uuid.uuid4()),
                    **_points_body(
                        item.member_id,
                        item.points,
                        item.reference,
                        item.occurred_at,
                        item.metadata,
                    ),
                }
                for item in items
            ],
        }
        return self._json(
            "POST",
            "/v1/transactions/batch",
            purpose="accrual" if kinds == {"issue"} else "redemption",
            body=body,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def authorize(
        self,
        member_id: str,
        points: int,
        reference: str,
        hold_seconds: int | None,
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
        if hold_seconds is not None:
            body["hold_seconds"] = hold_seconds
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._json(
            "POST",
            "/v1/holds",
            purpose="redemption",
            body=body,
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def capture(
        self, hold_id: UUID | str, points: int | None, idempotency_key: str | None
    ) -> httpx.Request:
        return self._json(
            "POST",
            f"/v1/holds/{hold_id}/capture",
            purpose="redemption",
            body={} if points is None else {"points": points},
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def void(
        self, hold_id: UUID | str, reason: str | None, idempotency_key: str | None
    ) -> httpx.Request:
        return self._json(
            "POST",
            f"/v1/holds/{hold_id}/void",
            purpose="redemption",
            body={} if reason is None else {"reason": reason},
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )

    def hold(self, hold_id: UUID | str) -> httpx.Request:
        return self._json("GET", f"/v1/holds/{hold_id}", purpose="redemption")

    def holds_page(self, status: str | None, page_size: int, cursor: str | None) -> httpx.Request:
        params: dict[str, Any] = {"limit": page_size}
        if status is not None:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/v1/holds", purpose="redemption", params=params)

    def webhook_endpoint(
        self, url: str, event_types: Sequence[str], hmac_secret: bool
    ) -> httpx.Request:
        return self._json(
            "POST",
            "/v1/webhook-endpoints",
            purpose="settlement",
            body={"url": url, "event_types": list(event_types), "hmac_secret": hmac_secret},
            idempotency_key=str(uuid.uuid4()),
        )

    def webhook_test(self, endpoint_id: str) -> httpx.Request:
        return self._json(
            "POST",
            f"/v1/webhook-endpoints/{endpoint_id}/test",
            purpose="settlement",
            body={},
            idempotency_key=str(uuid.uuid4()),
        )

    def events_page(self, after: str | None, page_size: int) -> httpx.Request:
        params: dict[str, Any] = {"limit": page_size}
        if after:
            params["after"] = after
        return self._json("GET", "/v1/events", purpose="settlement", params=params)

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


def _points_body(
    member_id: str,
    points: int,
    reference: str,
    occurred_at: datetime | None,
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """An issue's or a redeem's fields; ``occurred_at`` now when not given."""
    moment = (occurred_at or datetime.now(UTC)).astimezone(UTC)
    body: dict[str, Any] = {
        "member_id": member_id,
        "points": points,
        "occurred_at": moment.isoformat().replace("+00:00", "Z"),
        "reference": reference,
    }
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body
