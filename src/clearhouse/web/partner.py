"""Partner endpoints: signed requests, one controller per resource.

Every handler here runs behind ``PartnerSignatureMiddleware``: the partner is the one whose key
signed the request (``request.state.partner``), and a partner only ever sees its own entries —
another partner's id is ``404 not_found``, never a hint that it exists.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from clearhouse.config import Settings
from clearhouse.domain import records
from clearhouse.domain.batches import BatchNotApplied, ItemOutcome, ItemPosted
from clearhouse.domain.errors import InvalidRequest, PurposeNotPermitted
from clearhouse.domain.ledger import EntryKind
from clearhouse.domain.periods import period_bounds
from clearhouse.domain.purposes import Purpose
from clearhouse.services import entries
from clearhouse.services.batches import Batches, BatchItem
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger, PointsRequest, PostedEntry
from clearhouse.web.api_docs import REPLAYABLE
from clearhouse.web.bad_requests import RequestFault, json_pointer
from clearhouse.web.paging import decode_cursor, encode_cursor
from clearhouse.web.problem_codes import PROBLEMS
from clearhouse.web.problems import problem_exception, problem_responses
from clearhouse.web.schemas import (
    BatchBody,
    BatchItemResult,
    BatchResult,
    Entry,
    EntryPage,
    ItemProblem,
    PointsBody,
    ReversalBody,
    entry_out,
    strict_body,
)
from clearhouse.web.signatures import VerifiedPartner

PAGE_LIMIT_MAX: Final = 1000
PURPOSE_OF_KIND: Final = {"issue": "accrual", "redeem": "redemption"}

SIGNED_PROBLEMS: Final = (
    "invalid_request",
    "missing_signature",
    "invalid_signature",
    "unknown_key",
    "stale_signature",
    "replayed_request",
    "digest_mismatch",
    "purpose_not_permitted",
    "unavailable",
    "internal_error",
)
BODY_PROBLEMS: Final = ("payload_too_large", "unsupported_media_type")
"""What the signature middleware answers a signed request with a body before it verifies."""
WRITE_PROBLEMS: Final = (
    *SIGNED_PROBLEMS,
    *BODY_PROBLEMS,
    "insufficient_points",
    "idempotency_key_in_use",
    "idempotency_key_reused",
    "unknown_member",
)

LEDGER_WRITE_PROBLEMS: Final = (
    *WRITE_PROBLEMS,
    "limit_exceeded",
    "member_erased",
    "period_closed",
)
"""An issue, a redeem or a reversal: the ledger's own refusals besides (the contract's limits,
an erased member, a period already sealed)."""

BATCH_PROBLEMS: Final = (*WRITE_PROBLEMS, "batch_not_applied")
"""A batch's own answers; each item's problem is inside its result (``BatchItemResult``)."""

IdempotencyKey = Annotated[
    str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)
]
DataPurpose = Annotated[str, HeaderParameter(name="Data-Purpose")]


def _ledger(request: Request[Any, Any, Any]) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def partner_of(request: Request[Any, Any, Any]) -> VerifiedPartner:
    partner: VerifiedPartner = request.state.partner
    return partner


def require_purpose(request: Request[Any, Any, Any], purpose: str) -> VerifiedPartner:
    partner = partner_of(request)
    if partner.data_purpose != purpose:
        raise PurposeNotPermitted(f"this endpoint serves the purpose {purpose!r} (Data-Purpose)")
    return partner


async def require_granted(request: Request[Any, Any, Any], purpose: str) -> VerifiedPartner:
    """The declared purpose is this endpoint's, and the contract in force grants it."""
    partner = require_purpose(request, purpose)
    book: ContractBook = request.app.state.contracts
    await book.require_grant(partner.partner_id, Purpose(purpose))
    return partner


def evidence_of(partner: VerifiedPartner) -> records.Evidence:
    return records.Evidence(
        partner.signature_input,
        partner.signature,
        partner.content_digest,
        partner.signature_base,
    )


def _written(posted: PostedEntry, settings: Settings) -> Response[Entry]:
    headers = {"Idempotent-Replayed": "true"} if posted.replayed else {}
    return Response(
        entry_out(posted.entry, settings.timezone, with_balance=True),
        status_code=201,
        headers=headers,
    )


def metadata_json(metadata: dict[str, Any] | None, field: tuple[str | int, ...] = ()) -> str | None:
    """What a partner sent besides the request's fields, as JSON (PostgreSQL's jsonb holds no
    NUL character); ``field`` is where the request holds it (in a batch, its item)."""
    encoded = None if metadata is None else msgspec.json.encode(metadata).decode()
    if encoded is not None and "\\u0000" in encoded:
        raise InvalidRequest("metadata must not hold NUL characters", field=(*field, "metadata"))
    return encoded


async def _points_request(request: Request[Any, Any, Any]) -> PointsRequest:
    data = await strict_body(request, PointsBody)
    metadata = metadata_json(data.metadata)
    return PointsRequest(data.member_id, data.points, data.occurred_at, data.reference, metadata)


class TransactionController(Controller):
    """Issue, redeem, reverse and read the partner's own entries."""

    path = "/v1/transactions"
    tags = ("transactions",)

    @post(
        "/issue",
        status_code=201,
        summary="Issue points to a member (Data-Purpose: accrual)",
        responses=problem_responses(*LEDGER_WRITE_PROBLEMS),
        response_headers=REPLAYABLE,
    )
    async def issue(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PointsBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Entry]:
        partner = require_purpose(request, "accrual")
        settings: Settings = request.app.state.settings
        posted = await _ledger(request).issue(
            partner.partner_id,
            await _points_request(request),
            idempotency_key=idempotency_key,
            evidence=evidence_of(partner),
        )
        return _written(posted, settings)

    @post(
        "/redeem",
        status_code=201,
        summary="Redeem a member's points (Data-Purpose: redemption)",
        responses=problem_responses(*LEDGER_WRITE_PROBLEMS),
        response_headers=REPLAYABLE,
    )
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PointsBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Entry]:
        partner = require_purpose(request, "redemption")
        settings: Settings = request.app.state.settings
        posted = await _ledger(request).redeem(
            partner.partner_id,
            await _points_request(request),
            idempotency_key=idempotency_key,
            evidence=evidence_of(partner),
        )
        return _written(posted, settings)

    @post(
        "/{entry_id:uuid}/reversals",
        status_code=201,
        summary="Reverse all or part of an own entry (Data-Purpose: that of the original)",
        responses=problem_responses(*LEDGER_WRITE_PROBLEMS, "not_found"),
        response_headers=REPLAYABLE,
    )
    async def reverse(
        self,
        request: Request[Any, Any, Any],
        entry_id: FromPath[UUID],
        data: JSONBody[ReversalBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[Entry]:
        partner = partner_of(request)
        database: Database = request.app.state.database
        original = await entries.own_entry(database, partner.partner_id, entry_id)
        purpose = PURPOSE_OF_KIND.get(original.kind.value)
        if purpose is not None:
            await require_granted(request, purpose)
        body = await strict_body(request, ReversalBody)
        posted = await _ledger(request).reverse(
            partner.partner_id,
            entry_id,
            points=body.points,
            reason=body.reason,
            idempotency_key=idempotency_key,
            evidence=evidence_of(partner),
        )
        return _written(posted, request.app.state.settings)

    @get(
        "/{entry_id:uuid}",
        summary="One of the partner's own entries (Data-Purpose: settlement)",
        responses=problem_responses(*SIGNED_PROBLEMS, "not_found"),
    )
    async def read(
        self, request: Request[Any, Any, Any], entry_id: FromPath[UUID], data_purpose: DataPurpose
    ) -> Entry:
        partner = await require_granted(request, "settlement")
        settings: Settings = request.app.state.settings
        entry = await entries.own_entry(request.app.state.database, partner.partner_id, entry_id)
        return entry_out(entry, settings.timezone, with_balance=False)

    @get(
        "/",
        summary="The partner's own entries of a period, paginated (Data-Purpose: settlement)",
        responses=problem_responses(*SIGNED_PROBLEMS),
    )
    async def list_entries(
        self,
        request: Request[Any, Any, Any],
        period: Annotated[str, QueryParameter(pattern=r"^\d{4}-\d{2}$")],
        data_purpose: DataPurpose,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT_MAX)] = 100,
        cursor: Annotated[str | None, QueryParameter()] = None,
    ) -> EntryPage:
        partner = await require_granted(request, "settlement")
        settings: Settings = request.app.state.settings
        start, end = period_bounds(period, settings.timezone)
        after = None if cursor is None else decode_cursor(cursor)
        rows = await entries.own_entries_page(
            request.app.state.database, partner.partner_id, start, end, after, limit + 1
        )
        page, more = rows[:limit], len(rows) > limit
        return EntryPage(
            entries=[entry_out(r, settings.timezone, with_balance=False) for r in page],
            next_cursor=encode_cursor(page[-1].recorded_at, page[-1].entry_id) if more else None,
        )


class BatchController(Controller):
    """Many issues or many redeems in one signed request (``docs/partner-guide.md``, Batches).

    Served behind a signature middleware of its own, whose body limit is the batch's
    (``CLEARHOUSE_BATCH_BODY_MAX_BYTES``); Litestar's own limit is lifted here, the middleware
    has read and bounded the body before."""

    path = "/v1/transactions"
    tags = ("transactions",)

    @post(
        "/batch",
        status_code=200,
        summary="Issue or redeem up to 1,000 times in one request "
        "(Data-Purpose: accrual for issues, redemption for redeems)",
        responses=problem_responses(*BATCH_PROBLEMS),
        response_headers=REPLAYABLE,
        request_max_body_size=None,
    )
    async def batch(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[BatchBody],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[BatchResult]:
        partner = partner_of(request)
        body = await strict_body(request, BatchBody)
        items = [
            BatchItem(
                EntryKind(item.kind),
                item.idempotency_key,
                PointsRequest(
                    item.member_id,
                    item.points,
                    item.occurred_at,
                    item.reference,
                    metadata_json(item.metadata, ("items", index)),
                ),
            )
            for index, item in enumerate(body.items)
        ]
        batches: Batches = request.app.state.batches
        zone = request.app.state.settings.timezone
        try:
            posted = await batches.post(
                partner.partner_id,
                _batch_purpose(partner.data_purpose),
                items,
                atomic=body.atomic,
                idempotency_key=idempotency_key,
                evidence=evidence_of(partner),
            )
        except BatchNotApplied as refused:
            results = [
                _item_result(i, items[i].idempotency_key, outcome, zone)
                for i, outcome in refused.refused
            ]
            raise problem_exception(
                refused.code,
                refused.detail,
                extensions={"refused": msgspec.to_builtins(results)},
            ) from refused
        results = [
            _item_result(index, item.idempotency_key, outcome, zone)
            for index, (item, outcome) in enumerate(zip(items, posted.outcomes, strict=True))
        ]
        done = sum(1 for r in results if r.status == 201)
        return Response(
            BatchResult(
                atomic=body.atomic, posted=done, refused=len(results) - done, results=results
            ),
            status_code=200,
            headers={"Idempotent-Replayed": "true"} if posted.replayed else {},
        )


def _batch_purpose(declared: str | None) -> Purpose:
    try:
        return Purpose(declared or "")
    except ValueError:
        raise PurposeNotPermitted(
            "a batch serves the purpose 'accrual' or 'redemption' (Data-Purpose)"
        ) from None


def _item_result(index: int, key: str, outcome: ItemOutcome, zone: Any) -> BatchItemResult:
    """An item's outcome as the partner reads it: its entry as a single request's answer, or
    its problem as a single request's (its status and code, where in the body it lies)."""
    if isinstance(outcome, ItemPosted):
        return BatchItemResult(
            index=index,
            idempotency_key=key,
            status=201,
            entry=entry_out(outcome.entry, zone, with_balance=True),
            replayed=outcome.replayed,
        )
    status, title = PROBLEMS[outcome.code]
    errors = None
    if outcome.field is not None:
        errors = [RequestFault(outcome.detail, json_pointer(outcome.field))]
    return BatchItemResult(
        index=index,
        idempotency_key=key,
        status=status,
        problem=ItemProblem(
            type=f"/problems/{outcome.code}",
            title=title,
            status=status,
            detail=outcome.detail,
            code=outcome.code,
            errors=errors,
        ),
    )
