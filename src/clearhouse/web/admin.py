"""Operator endpoints (bearer token, role operator) and the coalition's public keys."""

from __future__ import annotations

import base64
from typing import Any, Final

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from clearhouse.config import Settings
from clearhouse.domain.contracts import ContractInvalid
from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.purposes import Purpose
from clearhouse.services import access
from clearhouse.services import coalition_keys as keys_service
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import add_partner
from clearhouse.services.contracts import load_contracts
from clearhouse.services.operator_actions import Action
from clearhouse.web.actions import logged_api
from clearhouse.web.auth import operator_only
from clearhouse.web.problems import problem_responses
from clearhouse.web.request_id import request_id_of
from clearhouse.web.schemas import (
    Clock,
    ClockIn,
    KeyIn,
    Partner,
    PartnerIn,
    PartnerKey,
    PublicKey,
    PublicKeys,
    key_out,
    rfc3339,
)

OPERATOR_PROBLEMS: Final = (
    "invalid_request",
    "invalid_token",
    "forbidden",
    "unavailable",
    "internal_error",
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
        return key_out(next(k for k in keys if k.key_id == key_id))

    @get(
        "/partners/{partner_id:str}/keys",
        summary="A partner's keys",
        responses=problem_responses(*OPERATOR_PROBLEMS),
    )
    async def list_keys(self, state: State, partner_id: FromPath[str]) -> list[PartnerKey]:
        return [key_out(k) for k in await access.partner_keys(state.database, partner_id)]

    @post(
        "/keys/{key_id:str}/revoke",
        status_code=200,
        summary="Revoke a key; its next signature fails",
        responses=problem_responses(*OPERATOR_PROBLEMS, "not_found"),
    )
    async def revoke_key(
        self, request: Request[Any, Any, Any], state: State, key_id: FromPath[str]
    ) -> None:
        revoking = access.revoke_key(state.database, key_id)
        await logged_api(request, Action.REVOKE_KEY, key_id, revoking)


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


KEY_USES: Final[dict[str, list[str]]] = {
    "statements": ["response", "statement"],
    "webhooks": ["webhooks"],
}
"""What a key of each purpose signs, as ``GET /v1/keys`` says it (``use``)."""


@get(
    "/v1/keys",
    summary="Every coalition key that ever signed responses, statements or webhooks, with its "
    "validity",
    tags=["keys"],
    opt={"unsigned": True},
    responses=problem_responses("unavailable"),
)
async def coalition_keys(state: State) -> PublicKeys:
    return PublicKeys(
        keys=[
            PublicKey(
                key_id=k.key_id,
                algorithm="ed25519",
                public_key=base64.b64encode(k.public_key).decode(),
                use=list(KEY_USES[k.purpose]),
                status="current" if k.retired_at is None else "retired",
                not_before=rfc3339(k.not_before),
                not_after=None if k.retired_at is None else rfc3339(k.retired_at),
            )
            for k in await keys_service.published(state.database)
        ]
    )


class ContractFileIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    toml: str


class ContractsIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    files: list[ContractFileIn]


class ContractsLoaded(msgspec.Struct, frozen=True):
    stored: list[str]
    unchanged: list[str]
    partners_added: list[str]


class ContractVersionOut(msgspec.Struct, frozen=True):
    partner_id: str
    version: int
    effective_from: str
    sha256: str
    issue_rate: str
    redemption_rate: str
    fee_per_entry: str
    purposes: list[str]


class ContractAdminController(Controller):
    """Contract versions: upload (validated, immutable) and list."""

    path = "/v1/admin"
    tags = ("operator",)
    guards = [operator_only]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @put(
        "/contracts",
        summary="Load contract files (TOML); all are validated, then all new versions stored",
        responses=problem_responses(*OPERATOR_PROBLEMS, "invalid_request"),
    )
    async def load(self, state: State, data: JSONBody[ContractsIn]) -> ContractsLoaded:
        try:
            report = await load_contracts(
                state.database, [(f.name, f.toml.encode()) for f in data.files]
            )
        except ContractInvalid as invalid:
            raise InvalidRequest("; ".join(str(p) for p in invalid.problems)) from invalid
        state.contracts.forget()
        return ContractsLoaded(
            stored=[f"{p} v{v}" for p, v in report.stored],
            unchanged=[f"{p} v{v}" for p, v in report.unchanged],
            partners_added=report.partners_added,
        )

    @get(
        "/partners/{partner_id:str}/contracts",
        summary="A partner's contract versions",
        responses=problem_responses(*OPERATOR_PROBLEMS),
    )
    async def versions(self, state: State, partner_id: FromPath[str]) -> list[ContractVersionOut]:
        state.contracts.forget(partner_id)
        return [
            ContractVersionOut(
                partner_id=v.partner_id,
                version=v.version,
                effective_from=rfc3339(v.effective_from),
                sha256=v.sha256,
                issue_rate=str(v.issue_rate),
                redemption_rate=str(v.redemption_rate),
                fee_per_entry=str(v.fee_per_entry),
                purposes=sorted(p.value for p in v.grants),
            )
            for v in await state.contracts.versions(partner_id)
        ]


class OperatorConsentIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    partner_id: str
    """A partner's id, or ``*`` for every partner of the coalition."""
    purpose: Purpose
    granted: bool


class OperatorConsentsIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    consents: list[OperatorConsentIn]


class ConsentOut(msgspec.Struct, frozen=True):
    partner_id: str
    purpose: str
    granted: bool
    recorded_at: str


class MemberConsentsOut(msgspec.Struct, frozen=True):
    member_id: str
    consents: list[ConsentOut]


class MemberAdminController(Controller):
    """Erasure requests (GDPR Art. 17), access reports (Art. 15) and consents the member gives
    through the coalition itself, including those to all partners (``*``)."""

    path = "/v1/admin/members"
    tags = ("operator",)
    guards = [operator_only]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @delete(
        "/{member_id:str}/personal-data",
        status_code=200,
        summary="Erase a member's personal data: the member's key is destroyed",
        responses=problem_responses(*OPERATOR_PROBLEMS, "not_found"),
    )
    async def erase(
        self, request: Request[Any, Any, Any], state: State, member_id: FromPath[str]
    ) -> dict[str, Any]:
        erasing = state.members.erase(member_id)
        erased_now = await logged_api(request, Action.ERASE, member_id, erasing)
        return {"member_id": member_id, "erased": True, "already_erased": not erased_now}

    @get(
        "/{member_id:str}/access-report",
        summary="What is held of a member and to whom it was disclosed",
        responses=problem_responses(*OPERATOR_PROBLEMS, "not_found"),
    )
    async def access_report(self, state: State, member_id: FromPath[str]) -> dict[str, Any]:
        report: dict[str, Any] = await state.members.access_report(member_id)
        return report

    @put(
        "/{member_id:str}/consents",
        summary="Record consents the member gave or withdrew through the coalition: to one "
        "partner, or to all (`*`)",
        responses=problem_responses(*OPERATOR_PROBLEMS, "not_found", "member_erased"),
    )
    async def consents(
        self,
        request: Request[Any, Any, Any],
        state: State,
        member_id: FromPath[str],
        data: JSONBody[OperatorConsentsIn],
    ) -> MemberConsentsOut:
        history = await state.members.record_consents_as_operator(
            member_id,
            [(c.partner_id, c.purpose, c.granted) for c in data.consents],
            request_id_of(request.scope),
        )
        return MemberConsentsOut(
            member_id,
            [
                ConsentOut(c.partner_id, c.purpose.value, c.granted, rfc3339(c.recorded_at))
                for c in history
            ],
        )
