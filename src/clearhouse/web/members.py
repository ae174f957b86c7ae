"""Member endpoints for partners (signed): enrol, read under a purpose, record consents."""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from clearhouse.domain.errors import InvalidRequest, PurposeNotPermitted
from clearhouse.domain.expiry import EXPIRING_WITHIN_DAYS_MAX
from clearhouse.domain.purposes import Purpose
from clearhouse.services.members import ConsentStatement, Members
from clearhouse.web.api_docs import REPLAYABLE
from clearhouse.web.partner import BODY_PROBLEMS, SIGNED_PROBLEMS, WRITE_PROBLEMS, partner_of
from clearhouse.web.problems import problem_responses
from clearhouse.web.request_id import request_id_of
from clearhouse.web.schemas import rfc3339, strict_body

IdempotencyKey = Annotated[
    str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)
]
DataPurpose = Annotated[str, HeaderParameter(name="Data-Purpose")]
MEMBER_PROBLEMS: Final = ("consent_required", "not_found", "member_erased", "forbidden")


class PersonalIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    birth_date: str | None = None
    postal_code: str | None = None


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    purpose: Purpose
    granted: bool
    all_partners: bool = False
    """Refused when true (``403 forbidden``): a partner records consents to itself only; a
    consent to every partner (``*``) is recorded through the operator API."""


class EnrolmentIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    member_id: str | None = None
    personal: PersonalIn | None = None
    consents: list[ConsentIn] = msgspec.field(default_factory=list)


class ConsentsIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    consents: list[ConsentIn]


class Consent(msgspec.Struct, frozen=True):
    partner_id: str
    purpose: str
    granted: bool
    recorded_at: str


class Enrolled(msgspec.Struct, frozen=True):
    member_id: str


class Expiring(msgspec.Struct, frozen=True):
    expires_at: str
    points: int


class MemberExpiring(msgspec.Struct, frozen=True):
    member_id: str
    within_days: int
    expiring: list[Expiring]


class MemberConsents(msgspec.Struct, frozen=True):
    member_id: str
    consents: list[Consent]


def _members(request: Request[Any, Any, Any]) -> Members:
    members: Members = request.app.state.members
    return members


def _statements(consents: list[ConsentIn]) -> list[ConsentStatement]:
    return [ConsentStatement(c.purpose, c.granted, c.all_partners) for c in consents]


def _declared(request: Request[Any, Any, Any], expected: Purpose | None = None) -> Purpose:
    declared = partner_of(request).data_purpose
    try:
        purpose = Purpose(declared or "")
    except ValueError as exc:
        raise InvalidRequest(
            f"Data-Purpose {declared!r} is not a known purpose", field="Data-Purpose"
        ) from exc
    if expected is not None and purpose is not expected:
        raise PurposeNotPermitted(f"this endpoint serves the purpose {expected.value!r}")
    return purpose


class MemberController(Controller):
    path = "/v1/members"
    tags = ("members",)

    @post(
        "/",
        status_code=201,
        summary="Enrol a member (Data-Purpose: enrolment)",
        responses=problem_responses(*WRITE_PROBLEMS, "forbidden"),
        response_headers=REPLAYABLE,
    )
    async def enrol(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[EnrolmentIn],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Enrolled]:
        _declared(request, Purpose.ENROLMENT)
        data = await strict_body(request, EnrolmentIn)
        personal = {} if data.personal is None else msgspec.structs.asdict(data.personal)
        enrolment = await _members(request).enrol(
            partner_of(request).partner_id,
            member_id=data.member_id,
            personal={k: v for k, v in personal.items() if v is not None},
            consents=_statements(data.consents),
            idempotency_key=idempotency_key,
            request_id=request_id_of(request.scope),
        )
        headers = {"Idempotent-Replayed": "true"} if enrolment.replayed else {}
        return Response(Enrolled(enrolment.member_id), status_code=201, headers=headers)

    @get(
        "/{member_id:str}",
        summary="The member as the declared purpose allows (Data-Purpose: any granted)",
        responses=problem_responses(*SIGNED_PROBLEMS, *MEMBER_PROBLEMS),
    )
    async def read(
        self, request: Request[Any, Any, Any], member_id: FromPath[str], data_purpose: DataPurpose
    ) -> dict[str, Any]:
        view = await _members(request).read(
            partner_of(request).partner_id,
            member_id,
            _declared(request),
            request_id_of(request.scope),
        )
        return {
            "member_id": view.member_id,
            "purpose": view.purpose.value,
            "contract_version": view.contract_version,
            **view.fields,
        }

    @get(
        "/{member_id:str}/expiring",
        summary="The member's points that expire unless redeemed, per expiry time "
        "(Data-Purpose: customer_service)",
        responses=problem_responses(*SIGNED_PROBLEMS, *MEMBER_PROBLEMS),
    )
    async def expiring(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        data_purpose: DataPurpose,
        within_days: Annotated[int, QueryParameter(ge=1, le=EXPIRING_WITHIN_DAYS_MAX)] = 30,
    ) -> MemberExpiring:
        _declared(request, Purpose.CUSTOMER_SERVICE)
        found = await _members(request).expiring(
            partner_of(request).partner_id, member_id, within_days, request_id_of(request.scope)
        )
        return MemberExpiring(
            member_id,
            within_days,
            [Expiring(rfc3339(e.expires_at), e.points) for e in found],
        )

    @put(
        "/{member_id:str}/consents",
        summary="Record consents given or withdrawn to this partner (Data-Purpose: "
        "consent_management)",
        responses=problem_responses(*SIGNED_PROBLEMS, *MEMBER_PROBLEMS, *BODY_PROBLEMS),
    )
    async def consents(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[ConsentsIn],
        data_purpose: DataPurpose,
    ) -> MemberConsents:
        _declared(request, Purpose.CONSENT_MANAGEMENT)
        data = await strict_body(request, ConsentsIn)
        history = await _members(request).record_consents(
            partner_of(request).partner_id,
            member_id,
            _statements(data.consents),
            request_id_of(request.scope),
        )
        return MemberConsents(
            member_id,
            [
                Consent(c.partner_id, c.purpose.value, c.granted, rfc3339(c.recorded_at))
                for c in history
            ],
        )
