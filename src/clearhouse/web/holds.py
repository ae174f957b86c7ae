"""Holds: a partner reserves a member's points, then captures (a redeem), voids or lets them
expire. Signed like every partner call, ``Data-Purpose: redemption``; a partner only ever sees
its own holds, another partner's is ``404 not_found``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from clearhouse.config import Settings
from clearhouse.domain.holds import HoldStatus
from clearhouse.services.holds import HoldAnswer, HoldRequest, Holds
from clearhouse.web.api_docs import REPLAYABLE
from clearhouse.web.paging import decode_cursor, encode_cursor
from clearhouse.web.partner import (
    PAGE_LIMIT_MAX,
    SIGNED_PROBLEMS,
    WRITE_PROBLEMS,
    DataPurpose,
    IdempotencyKey,
    evidence_of,
    metadata_json,
    require_granted,
    require_purpose,
)
from clearhouse.web.problems import problem_responses
from clearhouse.web.schemas import (
    CaptureBody,
    Hold,
    HoldBody,
    HoldPage,
    VoidBody,
    hold_out,
    strict_body,
)

PURPOSE: Final = "redemption"
HOLD_PROBLEMS: Final = (
    *WRITE_PROBLEMS,
    "not_found",
    "limit_exceeded",
    "member_erased",
    "period_closed",
    "capture_exceeds_hold",
    "hold_already_captured",
    "hold_already_voided",
    "hold_expired",
)


def _holds(request: Request[Any, Any, Any]) -> Holds:
    holds: Holds = request.app.state.holds
    return holds


def _answer(request: Request[Any, Any, Any], answer: HoldAnswer, status: int) -> Response[Hold]:
    settings: Settings = request.app.state.settings
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    body = hold_out(answer.hold, settings.timezone, member=answer.member, entry=answer.entry)
    return Response(body, status_code=status, headers=headers)


class HoldController(Controller):
    """Authorize, capture, void and read the partner's own holds."""

    path = "/v1/holds"
    tags = ("holds",)

    @post(
        "/",
        status_code=201,
        summary="Reserve a member's points (Data-Purpose: redemption)",
        responses=problem_responses(*HOLD_PROBLEMS),
        response_headers=REPLAYABLE,
    )
    async def authorize(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[HoldBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Hold]:
        partner = require_purpose(request, PURPOSE)
        body = await strict_body(request, HoldBody)
        metadata = metadata_json(body.metadata)
        answer = await _holds(request).authorize(
            partner.partner_id,
            HoldRequest(
                body.member_id,
                body.points,
                body.occurred_at,
                body.reference,
                body.hold_seconds,
                metadata,
            ),
            idempotency_key=idempotency_key,
            evidence=evidence_of(partner),
        )
        return _answer(request, answer, 201)

    @post(
        "/{hold_id:uuid}/capture",
        status_code=201,
        summary="Redeem all or part of a hold's points; the rest is released "
        "(Data-Purpose: redemption)",
        responses=problem_responses(*HOLD_PROBLEMS),
        response_headers=REPLAYABLE,
    )
    async def capture(
        self,
        request: Request[Any, Any, Any],
        hold_id: FromPath[UUID],
        data: JSONBody[CaptureBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Hold]:
        partner = require_purpose(request, PURPOSE)
        body = await strict_body(request, CaptureBody)
        answer = await _holds(request).capture(
            partner.partner_id,
            hold_id,
            body.points,
            idempotency_key=idempotency_key,
            evidence=evidence_of(partner),
        )
        return _answer(request, answer, 201)

    @post(
        "/{hold_id:uuid}/void",
        status_code=200,
        summary="Release all of a hold's points (Data-Purpose: redemption)",
        responses=problem_responses(*HOLD_PROBLEMS),
        response_headers=REPLAYABLE,
    )
    async def void(
        self,
        request: Request[Any, Any, Any],
        hold_id: FromPath[UUID],
        data: JSONBody[VoidBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Hold]:
        partner = require_purpose(request, PURPOSE)
        body = await strict_body(request, VoidBody)
        answer = await _holds(request).void(
            partner.partner_id, hold_id, body.reason, idempotency_key=idempotency_key
        )
        return _answer(request, answer, 200)

    @get(
        "/{hold_id:uuid}",
        summary="One of the partner's own holds (Data-Purpose: redemption)",
        responses=problem_responses(*SIGNED_PROBLEMS, "not_found"),
    )
    async def read(
        self, request: Request[Any, Any, Any], hold_id: FromPath[UUID], data_purpose: DataPurpose
    ) -> Hold:
        partner = await require_granted(request, PURPOSE)
        settings: Settings = request.app.state.settings
        return hold_out(await _holds(request).hold(partner.partner_id, hold_id), settings.timezone)

    @get(
        "/",
        summary="The partner's own holds in the order they were made, paginated "
        "(Data-Purpose: redemption)",
        responses=problem_responses(*SIGNED_PROBLEMS),
    )
    async def list_holds(
        self,
        request: Request[Any, Any, Any],
        data_purpose: DataPurpose,
        status: Annotated[HoldStatus | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT_MAX)] = 100,
        cursor: Annotated[str | None, QueryParameter()] = None,
    ) -> HoldPage:
        partner = await require_granted(request, PURPOSE)
        settings: Settings = request.app.state.settings
        after = None if cursor is None else decode_cursor(cursor)
        rows = await _holds(request).page(
            partner.partner_id, status=status, after=after, limit=limit + 1
        )
        page, more = rows[:limit], len(rows) > limit
        return HoldPage(
            holds=[hold_out(h, settings.timezone) for h in page],
            next_cursor=encode_cursor(page[-1].created_at, page[-1].hold_id) if more else None,
        )
