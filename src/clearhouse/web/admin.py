"""Operator endpoints (bearer token, role operator) and the coalition's public keys."""

from __future__ import annotations

import base64
from typing import Any, Final

from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from clearhouse.config import Settings
from clearhouse.services import access
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import add_partner
from clearhouse.storage.access import PartnerKeyRow
from clearhouse.web.auth import operator_only
from clearhouse.web.problems import problem_responses
from clearhouse.web.schemas import (
    Clock,
    ClockIn,
    KeyIn,
    Partner,
    PartnerIn,
    PartnerKey,
    PublicKey,
    PublicKeys,
    rfc3339,
)
from clearhouse.web.signatures import CoalitionKey

OPERATOR_PROBLEMS: Final = ("invalid_token", "forbidden", "unavailable", "internal_error")


def _key_out(key: PartnerKeyRow) -> PartnerKey:
    return PartnerKey(
        key_id=key.key_id,
        partner_id=key.partner_id,
        public_key=base64.b64encode(key.public_key).decode(),
        not_before=rfc3339(key.not_before),
        not_after=None if key.not_after is None else rfc3339(key.not_after),
        revoked_at=None if key.revoked_at is None else rfc3339(key.revoked_at),
    )


async def _partners(state: State) -> list[Partner]:
    return [
        Partner(partner_id, legal_name, rfc3339(created_at), active_keys)
        for partner_id, legal_name, created_at, active_keys in await access.list_partners(
            state.database
        )
    ]


class PartnerAdminController(Controller):
    """Onboard partners and manage their signing keys."""

    path = "/v1/admin"
    tags = ("operator",)
    guards = [operator_only]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @post(
        "/partners",
        status_code=201,
        summary="Register a partner",
        responses=problem_responses(*OPERATOR_PROBLEMS, "invalid_request"),
    )
    async def create_partner(self, state: State, data: JSONBody[PartnerIn]) -> Partner:
        await add_partner(state.database, data.partner_id, data.legal_name)
        return next(p for p in await _partners(state) if p.partner_id == data.partner_id)

    @get("/partners", summary="All partners", responses=problem_responses(*OPERATOR_PROBLEMS))
    async def list_partners(self, state: State) -> list[Partner]:
        return await _partners(state)

    @post(
        "/partners/{partner_id:str}/keys",
        status_code=201,
        summary="Add a partner's Ed25519 public key (PEM or base64)",
        responses=problem_responses(*OPERATOR_PROBLEMS, "invalid_request", "not_found"),
    )
    async def add_key(
        self, state: State, partner_id: FromPath[str], data: JSONBody[KeyIn]
    ) -> PartnerKey:
        key_id = await access.add_key(
            state.database,
            partner_id,
            data.public_key,
            key_id=data.key_id,
            not_before=data.not_before,
            not_after=data.not_after,
        )
        keys = await access.partner_keys(state.database, partner_id)
        return _key_out(next(k for k in keys if k.key_id == key_id))

    @get(
        "/partners/{partner_id:str}/keys",
        summary="A partner's keys",
        responses=problem_responses(*OPERATOR_PROBLEMS),
    )
    async def list_keys(self, state: State, partner_id: FromPath[str]) -> list[PartnerKey]:
        return [_key_out(k) for k in await access.partner_keys(state.database, partner_id)]

    @post(
        "/keys/{key_id:str}/revoke",
        status_code=200,
        summary="Revoke a key; its next signature fails",
        responses=problem_responses(*OPERATOR_PROBLEMS, "not_found"),
    )
    async def revoke_key(self, state: State, key_id: FromPath[str]) -> None:
        await access.revoke_key(state.database, key_id)


class ClockController(Controller):
    """The sandbox ledger clock; this route exists only in sandbox mode."""

    path = "/v1/admin/clock"
    tags = ("operator",)
    guards = [operator_only]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @put(
        "/",
        summary="Set the ledger clock (sandbox only); it keeps ticking from there",
        responses=problem_responses(*OPERATOR_PROBLEMS, "invalid_request"),
    )
    async def set_clock(self, request: Request[Any, Any, Any], data: JSONBody[ClockIn]) -> Clock:
        settings: Settings = request.app.state.settings
        now = await set_ledger_time(
            request.app.state.database, sandbox=settings.sandbox, at=data.at
        )
        return Clock(ledger_time=rfc3339(now))


@get(
    "/v1/keys",
    summary="The coalition's public keys for response and statement signatures",
    tags=["keys"],
    opt={"unsigned": True},
)
async def coalition_keys(state: State) -> PublicKeys:
    key: CoalitionKey = state.coalition_key
    return PublicKeys(
        keys=[
            PublicKey(
                key_id=key.key_id,
                algorithm="ed25519",
                public_key=base64.b64encode(key.public_key).decode(),
                use=["response", "statement"],
            )
        ]
    )
