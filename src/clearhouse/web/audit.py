"""Auditor endpoints (bearer token, role auditor or operator): read, never write."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import QueryParameter

from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.periods import utc_instant
from clearhouse.domain.records import Disclosure
from clearhouse.services import access
from clearhouse.statements.tables import write_table_csv, write_table_workbook
from clearhouse.web.auth import auditor_or_operator
from clearhouse.web.problems import problem_responses
from clearhouse.web.schemas import PartnerKey, key_out, rfc3339

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DISCLOSURE_COLUMNS: Final = (
    "disclosed_at",
    "partner_id",
    "member_id",
    "purpose",
    "fields",
    "contract_version",
    "legal_basis",
    "request_id",
)


def _instant(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an RFC 3339 time", field=name) from exc
    return utc_instant(moment, name=name)


def disclosure_row(row: Disclosure) -> tuple[object, ...]:
    """One disclosure as a row of ``DISCLOSURE_COLUMNS`` (the API's exports and the console's)."""
    return (
        rfc3339(row.disclosed_at),
        row.partner_id,
        row.member_id,
        row.purpose,
        " ".join(row.fields),
        row.contract_version,
        row.legal_basis,
        row.request_id,
    )


class AuditController(Controller):
    path = "/v1/audit"
    tags = ("auditor",)
    guards = [auditor_or_operator]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get(
        "/disclosures",
        summary="The disclosure log for a time range: JSON, CSV (text/csv) or xlsx (by Accept)",
        responses=problem_responses("invalid_token", "invalid_request", "unavailable"),
    )
    async def disclosures(
        self,
        request: Request[Any, Any, Any],
        state: State,
        start: Annotated[str, QueryParameter(name="from")],
        end: Annotated[str, QueryParameter(name="to")],
    ) -> Response[Any]:
        rows = await state.members.disclosure_log(_instant(start, "from"), _instant(end, "to"))
        table = [disclosure_row(r) for r in rows]
        accept = request.headers.get("accept", "")
        if XLSX in accept:
            body = write_table_workbook("Disclosures", DISCLOSURE_COLUMNS, table)
            return Response(body, media_type=XLSX)
        if "text/csv" in accept:
            return Response(write_table_csv(DISCLOSURE_COLUMNS, table), media_type="text/csv")
        return Response([dict(zip(DISCLOSURE_COLUMNS, row, strict=True)) for row in table])

    @get(
        "/partner-keys",
        summary="Every partner key there ever was (current, expired, revoked), with its validity:"
        " what partner signatures on entries verify with",
        responses=problem_responses("invalid_token", "unavailable"),
    )
    async def partner_keys(self, state: State) -> list[PartnerKey]:
        return [key_out(k) for k in await access.all_partner_keys(state.database)]
