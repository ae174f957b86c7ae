"""Periods and statements over HTTP: operators close and settle, partners fetch their own
statement, auditors fetch any statement, the sealed periods with their roots, the canonical
entries and a verification."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from clearhouse.config import Settings
from clearhouse.domain.periods import period_bounds
from clearhouse.domain.records import SealedPeriod
from clearhouse.services.clearing import Clearing
from clearhouse.services.operator_actions import Action
from clearhouse.statements.documents import COALITION_PARTY
from clearhouse.web.actions import logged_api
from clearhouse.web.admin import OPERATOR_PROBLEMS
from clearhouse.web.auth import auditor_or_operator, operator_only
from clearhouse.web.partner import SIGNED_PROBLEMS, DataPurpose, require_granted
from clearhouse.web.problems import problem_responses
from clearhouse.web.schemas import ClosedPeriod, rfc3339

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERIOD_PROBLEMS: Final = ("period_not_ended", "not_found")
AUDIT_PERIOD_PROBLEMS: Final = ("invalid_token", "invalid_request", "not_found", "unavailable")


def _clearing(state: State) -> Clearing:
    clearing: Clearing = state.clearing
    return clearing


async def _statement_response(
    request: Request[Any, Any, Any], clearing: Clearing, period: str, party: str
) -> Response[Any]:
    accept = request.headers.get("accept", "")
    return await statement_response(clearing, period, party, accept, request.app.state.settings)


async def statement_response(
    clearing: Clearing, period: str, party: str, accept: str, settings: Settings
) -> Response[Any]:
    """A statement as served: its JSON, or its workbook when ``accept`` asks for one (the API's
    and the console's downloads are these bytes)."""
    period_bounds(period, settings.timezone)  # a well-formed period
    statement = await clearing.statement(period, party)
    if XLSX in accept:
        buffer = io.BytesIO()
        await clearing.write_workbook(period, party, buffer)
        filename = f"statement-{period}-{party}.xlsx"
        return Response(
            buffer.getvalue(),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return Response(statement.served_json(), media_type=MediaType.JSON)


def _period_out(row: Any) -> dict[str, Any]:
    return {
        "period": row.period,
        "status": row.status,
        "entries": row.entry_count,
        "tree_head": row.tree_head.hex(),
        "previous_root": row.previous_root.hex(),
        "root": row.root.hex(),
        "closed_at": rfc3339(row.closed_at),
        "settled_at": None if row.settled_at is None else rfc3339(row.settled_at),
    }


def _closed_period_out(row: SealedPeriod) -> ClosedPeriod:
    return ClosedPeriod(
        period=row.period,
        status=row.status,
        entry_count=row.entry_count,
        tree_head=row.tree_head.hex(),
        previous_root=row.previous_root.hex(),
        root=row.root.hex(),
        starts_at=rfc3339(row.starts_at),
        ends_at=rfc3339(row.ends_at),
        closed_at=rfc3339(row.closed_at),
        settled_at=None if row.settled_at is None else rfc3339(row.settled_at),
    )


class StatementController(Controller):
    """A partner's own statement (signed request; Data-Purpose: settlement)."""

    path = "/v1/statements"
    tags = ("statements",)

    @get(
        "/{period:str}",
        summary="The partner's own settlement statement: JSON, or the workbook by Accept",
        responses=problem_responses(*SIGNED_PROBLEMS, "not_found"),
    )
    async def own(
        self,
        request: Request[Any, Any, Any],
        state: State,
        period: FromPath[str],
        data_purpose: DataPurpose,
    ) -> Response[Any]:
        partner = await require_granted(request, "settlement")
        return await _statement_response(request, _clearing(state), period, partner.partner_id)


class PeriodAdminController(Controller):
    path = "/v1/admin/periods"
    tags = ("operator",)
    guards = [operator_only]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", summary="Closed and settled periods", responses=problem_responses(*OPERATOR_PROBLEMS))
    async def list_periods(self, state: State) -> list[dict[str, Any]]:
        return [_period_out(p) for p in await _clearing(state).periods()]

    @post(
        "/{period:str}/close",
        status_code=200,
        summary="Seal a month after its end: its ledger root is computed and chained",
        responses=problem_responses(*OPERATOR_PROBLEMS, *PERIOD_PROBLEMS),
    )
    async def close(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> dict[str, Any]:
        closing = _clearing(state).close(period)
        return _period_out(await logged_api(request, Action.CLOSE, period, closing))

    @post(
        "/{period:str}/settle",
        status_code=200,
        summary="Settle a month: net, post one money entry per partner, state and sign",
        responses=problem_responses(
            *OPERATOR_PROBLEMS, *PERIOD_PROBLEMS, "period_closed", "settlement_refused"
        ),
    )
    async def settle(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> dict[str, Any]:
        settling = _clearing(state).settle(period)
        settlement = await logged_api(request, Action.SETTLE, period, settling)
        return {
            **_period_out(settlement.period),
            "settled_now": settlement.settled_now,
            "statements": [msgspec.Raw(s.served_json()) for s in settlement.statements],
        }


class AuditStatementController(Controller):
    path = "/v1/audit"
    tags = ("auditor",)
    guards = [auditor_or_operator]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get(
        "/statements/{period:str}",
        summary="The coalition statement of a period: JSON, or the workbook by Accept",
        responses=problem_responses("invalid_token", "invalid_request", "not_found"),
    )
    async def coalition(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Response[Any]:
        return await _statement_response(request, _clearing(state), period, COALITION_PARTY)

    @get(
        "/statements/{period:str}/{partner_id:str}",
        summary="Any partner's statement of a period: JSON, or the workbook by Accept",
        responses=problem_responses("invalid_token", "invalid_request", "not_found"),
    )
    async def partner(
        self,
        request: Request[Any, Any, Any],
        state: State,
        period: FromPath[str],
        partner_id: FromPath[str],
    ) -> Response[Any]:
        return await _statement_response(request, _clearing(state), period, partner_id)

    @get(
        "/periods",
        summary="Every closed period: its entry count, tree head, chained root and times",
        responses=problem_responses("invalid_token", "unavailable"),
    )
    async def periods(self, state: State) -> list[ClosedPeriod]:
        return [_closed_period_out(p) for p in await _clearing(state).periods()]

    @get(
        "/periods/{period:str}",
        summary="One closed period (settled or not) with its ledger root; an open month is 404",
        responses=problem_responses(*AUDIT_PERIOD_PROBLEMS),
    )
    async def period(self, state: State, period: FromPath[str]) -> ClosedPeriod:
        return _closed_period_out(await _clearing(state).closed_period(period))

    @get(
        "/periods/{period:str}/entries",
        summary="A closed period's canonical entries (RFC 8785), one per line, in root order",
        responses=problem_responses("invalid_token", "invalid_request", "not_found"),
    )
    async def entries(self, state: State, period: FromPath[str]) -> Stream:
        lines = _clearing(state).canonical_entries(period)
        first = await anext(aiter(lines), None)  # a period not closed answers 404, not a stream

        async def body() -> AsyncIterator[bytes]:
            if first is None:
                return
            yield first + b"\n"
            async for line in lines:
                yield line + b"\n"

        return Stream(body(), media_type="application/jsonl")

    @get(
        "/verify",
        summary="Recompute every ledger root (or one period's, `?period=YYYY-MM`), check every "
        "statement's hash and signature and every entry's partner signature; the counts of "
        "what was checked, and every problem",
        responses=problem_responses("invalid_token", "invalid_request"),
    )
    async def verify(
        self,
        state: State,
        period: Annotated[str | None, QueryParameter(name="period")] = None,
    ) -> dict[str, Any]:
        report = await _clearing(state).verify(period)
        return {"verified": report.verifies, **report.as_json()}
