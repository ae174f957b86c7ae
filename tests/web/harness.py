"""A coalition behind the ASGI app for signed-API tests, and the ledger snapshot that every
refused request is checked against.

``SignedApi.refused`` is the one way the adversarial tests send a request that must fail: it
takes a snapshot of the whole ledger (entries, postings, the sum of every account, every
member's balance, every idempotency key, entry metadata) before and after, and asserts the
problem (status, ``code``, ``application/problem+json``, ``instance``, no traceback) and that
nothing changed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import httpx
from litestar import Litestar

from clearhouse.config import Settings
from clearhouse.services import access
from clearhouse.services.coalition_keys import register as register_coalition_key
from clearhouse.services.database import Database
from clearhouse.web.app import create_app
from tests.services.builders import a_member, a_partner
from tests.web.signing import (
    AUTO,
    Auto,
    PartnerKey,
    key_lines,
    partner_request,
    verify_receipt,
)

PUBLIC_BASE_URL: Final = "https://points.example.test"
"""What partners call; deliberately not the URL the ASGI app is reached at in some tests."""

OCCURRED_AT: Final = "2026-11-03T10:15:00Z"


def settings_for(directory: Path, **env: str) -> Settings:
    """Sandbox settings whose coalition key lives in ``directory``, not in the repository."""
    return Settings.from_env(
        {
            "CLEARHOUSE_SANDBOX": "1",
            "CLEARHOUSE_SIGNING_KEY_FILE": str(directory / "coalition-signing-key.pem"),
            "CLEARHOUSE_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            **env,
        }
    )


@dataclass(frozen=True)
class LedgerSnapshot:
    """Everything a request could have written to the ledger."""

    entries: int
    postings: int
    account_sums: Mapping[tuple[str, str], Decimal]
    member_balances: Mapping[str, int]
    member_held: Mapping[str, int]
    idempotency_keys: frozenset[tuple[str, str, uuid.UUID | None, uuid.UUID | None]]
    entry_metadata: int
    holds: frozenset[tuple[uuid.UUID, str]]
    hold_events: int


async def ledger_snapshot(database: Database) -> LedgerSnapshot:
    async with database.driver_connection() as connection:
        entries = await connection.fetchval("SELECT count(*) FROM entries")
        postings = await connection.fetchval("SELECT count(*) FROM postings")
        sums = await connection.fetch(
            "SELECT account, asset, sum(amount) AS total FROM postings GROUP BY account, asset"
        )
        balances = await connection.fetch(
            "SELECT member_id, balance_points, held_points FROM member_balances"
        )
        keys = await connection.fetch(
            "SELECT partner_id, idempotency_key, entry_id, hold_id FROM idempotency_keys"
        )
        metadata = await connection.fetchval("SELECT count(*) FROM entry_metadata")
        holds = await connection.fetch("SELECT hold_id, status FROM holds")
        hold_events = await connection.fetchval("SELECT count(*) FROM hold_events")
    return LedgerSnapshot(
        entries=entries,
        postings=postings,
        account_sums={(r["account"], r["asset"]): r["total"] for r in sums},
        member_balances={r["member_id"]: r["balance_points"] for r in balances},
        member_held={r["member_id"]: r["held_points"] for r in balances},
        idempotency_keys=frozenset(
            (r["partner_id"], r["idempotency_key"], r["entry_id"], r["hold_id"]) for r in keys
        ),
        entry_metadata=metadata,
        holds=frozenset((r["hold_id"], r["status"]) for r in holds),
        hold_events=hold_events,
    )


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with SPEC 4.2's fields, this status and this code; no traceback."""
    assert (response.status_code, _code_of(response)) == (status, code), response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"/problems/{code}"
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["instance"].startswith("urn:uuid:")
    assert body["instance"] == response.headers["x-request-id"]
    for leak in ("Traceback", 'File "', "site-packages", "asyncpg", "Error:"):
        assert leak not in response.text
    return body


def _code_of(response: httpx.Response) -> str | None:
    try:
        return str(response.json().get("code"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Partner:
    partner_id: str
    key: PartnerKey


@dataclass
class SignedApi:
    """The app on the run's database, reached through ``client`` in the test's event loop."""

    settings: Settings
    database: Database
    app: Litestar
    client: httpx.AsyncClient
    coalition_keys: dict[str, bytes]

    @property
    def base_url(self) -> str:
        return self.settings.public_base_url

    async def partner(
        self,
        name: str = "partner",
        terms: Mapping[str, object] | None = None,
        **key_validity: datetime,
    ) -> Partner:
        """A new partner with one registered key (``not_before``/``not_after`` optional), its
        contract's ``terms`` as given (the builders' defaults otherwise)."""
        partner_id = await a_partner(self.database, name, **(terms or {}))
        key = PartnerKey.generate(f"{partner_id}-key-1")
        await access.add_key(
            self.database, partner_id, key.public_base64, key_id=key.key_id, **key_validity
        )
        return Partner(partner_id, key)

    async def member(self, balance: int = 0) -> str:
        return await a_member(self.database, balance=balance)

    async def enrolled(
        self,
        partner: Partner,
        *,
        member_id: str | None = None,
        personal: Mapping[str, str] | None = None,
        idempotency_key: str | Auto = AUTO,
        **consents: bool,
    ) -> str:
        """A member enrolled through ``partner``'s signed API, with ``consents`` to it."""
        body: dict[str, Any] = {
            "personal": dict(personal or {"given_name": "Jana", "email": "jana@example.org"}),
            "consents": [{"purpose": p, "granted": g} for p, g in consents.items()],
        }
        if member_id is not None:
            body["member_id"] = member_id
        request = self.request(
            "POST",
            "/v1/members",
            partner,
            body=body,
            purpose="enrolment",
            idempotency_key=idempotency_key,
        )
        return str((await self.accepted(request))["member_id"])

    def request(
        self, method: str, path: str, signer: Partner | PartnerKey, **knobs: Any
    ) -> httpx.Request:
        key = signer.key if isinstance(signer, Partner) else signer
        return partner_request(self.base_url, method, path, key, **knobs)

    def points(
        self,
        kind: str,
        signer: Partner | PartnerKey,
        member_id: str,
        points: object,
        *,
        reference: str = "receipt 4711",
        **knobs: Any,
    ) -> httpx.Request:
        """A signed issue or redeem."""
        body = {
            "member_id": member_id,
            "points": points,
            "occurred_at": OCCURRED_AT,
            "reference": reference,
        }
        knobs.setdefault("body", body)
        return self.request("POST", f"/v1/transactions/{kind}", signer, **knobs)

    def reversal(
        self,
        signer: Partner | PartnerKey,
        entry: Mapping[str, Any],
        points: int | None = None,
        *,
        purpose: str | Auto | None = AUTO,
        **knobs: Any,
    ) -> httpx.Request:
        body: dict[str, Any] = {"reason": "returned goods"}
        if points is not None:
            body["points"] = points
        if purpose is AUTO:
            purpose = {"issue": "accrual", "redeem": "redemption"}[entry["kind"]]
        knobs.setdefault("body", body)
        return self.request(
            "POST",
            f"/v1/transactions/{entry['entry_id']}/reversals",
            signer,
            purpose=purpose,
            **knobs,
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self.client.send(request)

    async def accepted(
        self, request: httpx.Request, status: int = 201, *, label: str = "sig1"
    ) -> dict[str, Any]:
        """Send; it must succeed and carry a receipt that verifies independently."""
        response = await self.send(request)
        assert response.status_code == status, response.text
        verify_receipt(response, self.coalition_keys, request_label=label)
        body: dict[str, Any] = response.json()
        return body

    async def refused(
        self, request: httpx.Request, status: int, code: str, *, receipt: bool = False
    ) -> dict[str, Any]:
        """Send; it must be refused with ``code`` and leave the ledger exactly as it was.

        ``receipt``: the refusal came after the signature was verified, so it is signed too.
        """
        before = await ledger_snapshot(self.database)
        response = await self.send(request)
        after = await ledger_snapshot(self.database)
        changed = after != before
        assert (response.status_code, _code_of(response)) == (status, code), (
            f"{response.status_code} {response.text} (the ledger changed: {changed})"
        )
        body = assert_problem(response, status, code)
        assert not changed, f"a refused request ({code}) changed the ledger"
        if receipt:
            verify_receipt(response, self.coalition_keys)
        return body

    async def issued(self, partner: Partner, member_id: str, points: int) -> dict[str, Any]:
        return await self.accepted(self.points("issue", partner, member_id, points))


@asynccontextmanager
async def signed_api(database: Database, directory: Path, **env: str) -> AsyncIterator[SignedApi]:
    settings = settings_for(directory, **env)
    app = create_app(settings, database)
    # What the app's start-up does under a server (ASGITransport sends no lifespan events).
    await register_coalition_key(database, app.state.coalition_key)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.public_base_url
    ) as client:
        keys = key_lines(await client.get("/v1/keys"))
        yield SignedApi(settings, database, app, client, keys)


def utc_now() -> datetime:
    return datetime.now(UTC)
