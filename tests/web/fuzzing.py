"""What the schema-driven fuzz tests stand on: the served OpenAPI document, the partner
operations of the app, a coalition on a scratch database, and a ``requests`` auth that signs each
generated request as a partner.

schemathesis reaches the ASGI app in-process, in an event loop of its own (a thread of its ASGI
client), where the app opens its own pool from ``DATABASE_URL`` at start-up, as ``clearhouse
serve`` does. The coalition the generated requests point at (a partner with a contract and a
key, members, entries of both kinds, operator and auditor tokens) is built beforehand on the same
scratch database from another loop: a blocking portal that holds the database open until the
tests are done, then drops it.

``PartnerSignature`` runs on the request as ``requests`` prepared it (body serialized, query
encoded): it sets a fresh ``Idempotency-Key`` on POST and the ``Content-Digest`` of the body, then
signs with ``http_message_signatures`` (``tests.web.signing.sign_request``) over the
``@target-uri`` the server rebuilds from its public base URL, with a fresh nonce each time: a
shrinking Hypothesis sends the same case again, which must not be refused as a replay.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import requests
from anyio.from_thread import start_blocking_portal
from litestar import Litestar
from litestar.routes import HTTPRoute

from clearhouse.config import Settings
from clearhouse.domain.periods import period_of
from clearhouse.domain.purposes import Purpose
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.members import ConsentStatement, Members
from clearhouse.web.app import create_app
from clearhouse.web.signatures import PartnerSignatureMiddleware
from tests.conftest import fresh_database
from tests.services.builders import a_ledger, a_member, a_partner, points_request, unique
from tests.web.harness import Partner, settings_for, utc_now
from tests.web.signing import PartnerKey, profile_components, sha256_digest, sign_request

Operation = tuple[str, str]
"""``(METHOD, /path/{template})`` as the OpenAPI document writes it."""
DISCLOSURE_WINDOW = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00+01:00")


def partner_operations(app: Litestar) -> frozenset[Operation]:
    """Every operation that ``PartnerSignatureMiddleware`` guards in ``app``."""
    guarded: set[Operation] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            signed = any(
                isinstance(layer, PartnerSignatureMiddleware)
                for layer in handler.resolve_middleware()
            )
            if not signed or handler.opt.get(PartnerSignatureMiddleware.exclude_opt_key):
                continue
            # Litestar answers OPTIONS on every path itself; the document lists none of those.
            guarded |= {(m, route.path_format) for m in handler.http_methods if m != "OPTIONS"}
    return frozenset(guarded)


def served_document() -> tuple[dict[str, Any], frozenset[Operation]]:
    """The document a sandbox app serves at /schema/openapi.json, and its partner operations.

    No lifespan runs, so no database is opened; the coalition key is a throwaway.
    """

    async def fetch(app: Litestar) -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.get("/schema/openapi.json")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    with tempfile.TemporaryDirectory() as directory:
        app = create_app(settings_for(Path(directory)))
        return asyncio.run(fetch(app)), partner_operations(app)


@dataclass(frozen=True)
class Coalition:
    """What generated requests can point at instead of ids that exist nowhere."""

    partner: Partner
    members: tuple[str, ...]
    entries: Mapping[str, str]
    """Entry id -> the purpose a reversal of it declares (that of the original)."""
    periods: tuple[str, ...]
    tokens: Mapping[Role, str]

    def known(self, name: str) -> tuple[str, ...]:
        """Values that exist for a parameter or field called ``name`` (none for other names);
        ``from``/``to`` bound a window of the disclosure log."""
        values = {
            "member_id": self.members,
            "entry_id": tuple(self.entries),
            "period": self.periods,
            "partner_id": (self.partner.partner_id,),
            "key_id": (self.partner.key.key_id,),
            "from": DISCLOSURE_WINDOW,
            "to": DISCLOSURE_WINDOW,
        }
        return values.get(name, ())


async def a_coalition(database: Database, settings: Settings) -> Coalition:
    """A partner (contract v1, one key) with issued and redeemed entries, an enrolled member
    with personal data and consents, two bare members, and an operator and an auditor token."""
    partner_id = await a_partner(database, "fuzz")
    key = PartnerKey.generate(f"{partner_id}-key-1")
    await access.add_key(database, partner_id, key.public_base64, key_id=key.key_id)
    members = Members(database, ContractBook(database), settings.require_master_key())
    enrolment = await members.enrol(
        partner_id,
        member_id=None,
        personal={"given_name": "Jana", "family_name": "Nowak", "email": "jana@example.org"},
        consents=[ConsentStatement(Purpose.MARKETING, True)],
        idempotency_key=unique("enrol"),
    )
    bare = [await a_member(database), await a_member(database)]
    ledger = a_ledger(database)
    issued = await ledger.issue(
        partner_id, points_request(enrolment.member_id, 500), idempotency_key=unique("seed")
    )
    redeemed = await ledger.redeem(
        partner_id, points_request(enrolment.member_id, 120), idempotency_key=unique("seed")
    )
    period = period_of(issued.entry.recorded_at, settings.timezone)
    tokens = {
        role: (await access.create_token(database, role, utc_now() + timedelta(hours=2))).secret
        for role in Role
    }
    return Coalition(
        partner=Partner(partner_id, key),
        members=(enrolment.member_id, *bare),
        entries={
            str(issued.entry.entry_id): "accrual",
            str(redeemed.entry.entry_id): "redemption",
        },
        periods=(period, _month_before(period, settings.timezone)),
        tokens=tokens,
    )


def _month_before(period: str, zone: ZoneInfo) -> str:
    first = datetime.strptime(f"{period}-01", "%Y-%m-%d").replace(tzinfo=zone)
    return period_of(first - timedelta(days=1), zone)


@dataclass(frozen=True)
class FuzzTarget:
    """The app under test, its settings, and the coalition in its database."""

    app: Litestar
    settings: Settings
    coalition: Coalition


@contextmanager
def fuzz_target(directory: Path) -> Iterator[FuzzTarget]:
    """A sandbox app on a scratch database (``tests.conftest.fresh_database``) holding a
    coalition; the database is dropped when the block ends."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(fresh_database()) as database,
    ):
        url = database.engine.url.render_as_string(hide_password=False)
        settings = settings_for(directory, DATABASE_URL=url)
        coalition = portal.call(a_coalition, database, settings)
        yield FuzzTarget(create_app(settings), settings, coalition)


class PartnerSignature(requests.auth.AuthBase):
    """Signs a prepared request as the partner holding ``key`` (SPEC 4.1's profile)."""

    def __init__(self, key: PartnerKey, public_base_url: str) -> None:
        self.key = key
        self.public_base_url = public_base_url

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        method = str(prepared.method)
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        if method == "POST":
            prepared.headers["Idempotency-Key"] = secrets.token_hex(16)
        if body:
            prepared.headers["Content-Digest"] = sha256_digest(body)
        sent = urlsplit(str(prepared.url))
        target = self.public_base_url + sent.path + (f"?{sent.query}" if sent.query else "")
        profile = profile_components(
            method,
            has_body=bool(body) or method in {"POST", "PUT", "PATCH"},
            purpose="data-purpose" in prepared.headers,
        )
        # A field the generated request lacks (a negative case without Content-Type), or whose
        # value is not ASCII, is left uncovered: the server refuses the request for that field,
        # which is what the case is about, not for a signature over something else.
        ascii_fields = {n.lower(): v for n, v in prepared.headers.items() if v.isascii()}
        covered = [c for c in profile if c.startswith("@") or c in ascii_fields]
        request = httpx.Request(
            method, target, headers=[(c, ascii_fields[c]) for c in covered if c in ascii_fields]
        )
        # The server checks the signature over the URI it rebuilds from the path and query
        # exactly as sent; httpx must not have re-encoded either.
        assert str(request.url) == target, f"{request.url} != {target}"
        sign_request(request, self.key, covered=covered)
        for name in ("Signature-Input", "Signature"):
            prepared.headers[name] = request.headers[name]
        return prepared
