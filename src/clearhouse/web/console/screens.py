"""The console's screens: server-rendered pages on the same services and guards as the API.

Reads are open to operators and auditors alike; every change (close, settle, revoke a key,
replay a delivery) is a form that passes ``checked_form`` and runs through the operator action
log, exactly as the API's routes do. An HTMX request gets the part of the page it asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Final
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from clearhouse.domain.errors import InvalidRequest, NotFound
from clearhouse.domain.holds import HoldStatus
from clearhouse.domain.periods import period_bounds, period_of, utc_instant
from clearhouse.domain.records import DisclosureFilter
from clearhouse.services import access, console
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import ledger_time
from clearhouse.services.operator_actions import Action, Actor, actions, logged
from clearhouse.statements.columns import DIRECTION_WORDS
from clearhouse.statements.documents import COALITION_PARTY
from clearhouse.statements.model import CoalitionStatement, PartnerStatement
from clearhouse.statements.tables import write_table_csv, write_table_workbook
from clearhouse.web.audit import DISCLOSURE_COLUMNS, disclosure_row
from clearhouse.web.clearing import XLSX, statement_response
from clearhouse.web.console import charts
from clearhouse.web.console.sessions import (
    CSRF_FIELD,
    SIGN_IN_COOKIE_S,
    CsrfFailed,
    checked_form,
    cookie,
    cookie_name,
    form_of,
    holder,
    new_sign_in_token,
    same,
    session_secret,
)
from clearhouse.web.request_id import request_id_of

PAGE: Final = 50
EXPORT_MAX: Final = 100_000
LINE_SIGN: Final = {"issue": -1, "fee": -1, "redemption": 1, "breakage": 1}
"""How each statement line counts in the partner's net: positive is what the coalition pays."""


def _clearing(state: State) -> Clearing:
    clearing: Clearing = state.clearing
    return clearing


async def _page(request: Request[Any, Any, Any], name: str, **context: Any) -> Template:
    signed_in = await holder(request)
    return Template(
        template_name=name,
        context={
            "holder": signed_in,
            "operator": console.is_operator(signed_in),
            "csrf_field": CSRF_FIELD,
            "csrf": signed_in.csrf_token,
            "zone": request.app.state.settings.timezone.key,
            "coalition": request.app.state.settings.coalition_name,
            **context,
        },
    )


async def _act(
    request: Request[Any, Any, Any],
    action: Action,
    subject: str,
    work: Callable[[], Awaitable[object]],
    then: str,
) -> Redirect:
    """A change asked by a form: checked (CSRF first, then the operator), run and logged as
    the API's are, then the page that shows its result."""
    signed_in, _ = await checked_form(request)
    actor = Actor(signed_in.token_id, "console", request_id_of(request.scope))
    await logged(request.app.state.database, actor, action, subject, work())
    return Redirect(then, status_code=303)


def _instant(value: str, name: str) -> datetime:
    """An instant typed in a form: RFC 3339, or a date-time without offset read as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        detail = f"{name} must be a time like 2026-11-30T23:00:00Z"
        raise InvalidRequest(detail, field=name) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return utc_instant(moment, name=name)


def _period(request: Request[Any, Any, Any], period: str) -> tuple[datetime, datetime]:
    return period_bounds(period, request.app.state.settings.timezone)


def _valid(request: Request[Any, Any, Any], period: str) -> str:
    """``period`` once it is known to be a month (``invalid_request`` otherwise)."""
    _period(request, period)
    return period


class SignInController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/sign-in")
    async def sign_in_form(self, request: Request[Any, Any, Any]) -> Template:
        token = new_sign_in_token()
        settings = request.app.state.settings
        return Template(
            template_name="sign_in.html",
            context={"sign_in_token": token, "coalition": settings.coalition_name},
            cookies=[cookie(settings, token, SIGN_IN_COOKIE_S, "console_sign_in")],
        )

    @post("/sign-in", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        settings = state.settings
        form = await form_of(request)
        expected = request.cookies.get(cookie_name(settings, "console_sign_in"), "")
        if not same(form.get(CSRF_FIELD, ""), expected):
            raise CsrfFailed("the sign-in form's token is missing or is not this browser's")
        made = await console.sign_in(
            state.database, form.get("token", "").strip(), settings.console_session_s
        )
        if made is None:
            return Template(
                template_name="sign_in.html",
                context={
                    "sign_in_token": expected,
                    "coalition": settings.coalition_name,
                    "refused": True,
                },
                status_code=401,
            )
        lifetime = int((made.holder.expires_at - datetime.now(UTC)).total_seconds())
        return Redirect(
            "/console/periods",
            status_code=303,
            cookies=[
                cookie(settings, made.secret, max(lifetime, 1)),
                cookie(settings, "", 0, "console_sign_in"),
            ],
        )

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any], state: State) -> Redirect:
        await checked_form(request, operator=False)
        await console.sign_out(state.database, session_secret(request))
        return Redirect(
            "/console/sign-in", status_code=303, cookies=[cookie(state.settings, "", 0)]
        )


def _partner_nets(statements: list[Any]) -> list[dict[str, Any]]:
    """Each partner's net per contract version, from its signed statement's lines."""
    rows = []
    for signed in statements:
        body = signed.body()
        if not isinstance(body, PartnerStatement):
            continue
        by_version: dict[int, Decimal] = {}
        for line in body.lines:
            amount = Decimal(line.amount) * LINE_SIGN[line.kind]
            by_version[line.contract_version] = by_version.get(line.contract_version, Decimal(0))
            by_version[line.contract_version] += amount
        for version, net in sorted(by_version.items()):
            rows.append({"partner_id": body.partner_id, "version": version, "net": net})
    return rows


class ConsoleController(Controller):
    path = "/console"
    include_in_schema = False
    request_class = HTMXRequest

    @get("/")
    async def home(self) -> Redirect:
        return Redirect("/console/periods")

    # -- periods ---------------------------------------------------------------------------

    @get("/periods")
    async def periods(self, request: Request[Any, Any, Any], state: State) -> Template:
        sealed = await _clearing(state).periods()
        now = await ledger_time(state.database)
        zone = state.settings.timezone
        current = period_of(now, zone)
        closed = {p.period for p in sealed}
        start, _ = period_bounds(current, zone)
        previous = period_of(start - timedelta(seconds=1), zone)
        to_close = None if previous in closed else previous
        return await _page(
            request,
            "periods.html",
            periods=sorted(sealed, key=lambda p: p.period, reverse=True),
            to_close=to_close,
            now=now,
        )

    @get("/periods/{period:str}")
    async def period(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Template:
        _period(request, period)
        clearing = _clearing(state)
        sealed = await clearing.closed_period(period)
        context: dict[str, Any] = {"period": sealed}
        if sealed.status == "settled":
            statements = await clearing.statements(period)
            coalition = next(s for s in statements if s.party == COALITION_PARTY).body()
            assert isinstance(coalition, CoalitionStatement)
            context.update(_settled(coalition, statements))
        else:
            netting = await clearing.net(period)
            context["preview"] = netting
            context["positions_chart"] = charts.diverging(
                [(n.partner_id, n.net, f"{n.net:,.2f}") for n in netting.nets]
            )
        return await _page(request, "period.html", **context)

    @get("/periods/{period:str}/close")
    async def confirm_close(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Template:
        starts_at, ends_at = _period(request, period)
        sealed = await _clearing(state).periods()
        earlier = [p for p in sealed if p.period < period]
        previous = max(earlier, key=lambda p: p.period, default=None)
        return await _page(
            request,
            "confirm_close.html",
            period=period,
            starts_at=starts_at,
            ends_at=ends_at,
            previous=previous,
            already=any(p.period == period for p in sealed),
            entries=await console.entries_between(state.database, starts_at, ends_at),
        )

    @post("/periods/{period:str}/close", status_code=303)
    async def close(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Redirect:
        return await _act(
            request,
            Action.CLOSE,
            period,
            lambda: _clearing(state).close(_valid(request, period)),
            f"/console/periods/{period}",
        )

    @get("/periods/{period:str}/settle")
    async def confirm_settle(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Template:
        _period(request, period)
        netting = await _clearing(state).net(period)
        return await _page(
            request,
            "confirm_settle.html",
            period=period,
            preview=netting,
            words=DIRECTION_WORDS,
        )

    @post("/periods/{period:str}/settle", status_code=303)
    async def settle(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Redirect:
        return await _act(
            request,
            Action.SETTLE,
            period,
            lambda: _clearing(state).settle(_valid(request, period)),
            f"/console/periods/{period}/statements",
        )

    # -- statements ------------------------------------------------------------------------

    @get("/periods/{period:str}/statements")
    async def statements(
        self, request: Request[Any, Any, Any], state: State, period: FromPath[str]
    ) -> Template:
        _period(request, period)
        clearing = _clearing(state)
        signed = await clearing.statements(period)
        if not signed:
            raise NotFound(f"no statements for {period} (is it settled?)")
        report = await clearing.verify(period)
        return await _page(
            request,
            "statements.html",
            period=period,
            statements=[(s, s.integrity()) for s in signed],
            report=report,
        )

    @get("/statements/{period:str}/{party:str}")
    async def download(
        self,
        request: Request[Any, Any, Any],
        state: State,
        period: FromPath[str],
        party: FromPath[str],
        format_: Annotated[str, QueryParameter(name="format", pattern="^(json|xlsx)$")] = "json",
    ) -> Response[Any]:
        """The same bytes as the API's: JSON, or the workbook."""
        await holder(request)
        accept = XLSX if format_ == "xlsx" else "application/json"
        return await statement_response(_clearing(state), period, party, accept, state.settings)

    # -- disclosures -----------------------------------------------------------------------

    @get("/disclosures")
    async def disclosures(self, request: Request[Any, Any, Any], state: State) -> Template:
        search, after, query = _disclosure_search(request)
        rows: list[Any] = []
        next_after = None
        if search is not None:
            found = await console.disclosures_page(state.database, search, after, PAGE + 1)
            rows = [d for _, d in found[:PAGE]]
            if len(found) > PAGE:
                last_id, last = found[PAGE - 1]
                next_after = f"{last.disclosed_at.isoformat()}|{last_id}"
        return await _page(
            request, "disclosures.html", rows=rows, next_after=next_after, query=query
        )

    @get("/disclosures/export")
    async def export_disclosures(
        self,
        request: Request[Any, Any, Any],
        state: State,
        format_: Annotated[str, QueryParameter(name="format", pattern="^(csv|xlsx)$")] = "csv",
    ) -> Response[Any]:
        await holder(request)
        search, _, _ = _disclosure_search(request)
        if search is None:
            raise InvalidRequest("give a time range (from, to)", field="from")
        found = await console.disclosures_page(state.database, search, None, EXPORT_MAX + 1)
        if len(found) > EXPORT_MAX:
            raise InvalidRequest(f"more than {EXPORT_MAX} rows: narrow the search", field="to")
        table = [disclosure_row(d) for _, d in found]
        if format_ == "xlsx":
            body = write_table_workbook("Disclosures", DISCLOSURE_COLUMNS, table)
            return Response(
                body,
                media_type=XLSX,
                headers={"Content-Disposition": 'attachment; filename="disclosures.xlsx"'},
            )
        return Response(
            write_table_csv(DISCLOSURE_COLUMNS, table),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="disclosures.csv"'},
        )

    # -- partners, keys, contracts ---------------------------------------------------------

    @get("/partners")
    async def partners(self, request: Request[Any, Any, Any], state: State) -> Template:
        partners = await access.list_partners(state.database)
        keys = await access.all_partner_keys(state.database)
        now = await ledger_time(state.database)
        versions = {p: await state.contracts.versions(p) for p, _, _, _ in partners}
        return await _page(
            request,
            "partners.html",
            partners=partners,
            keys=keys,
            versions=versions,
            valid={k.key_id: access.key_is_valid(k, now) for k in keys},
        )

    @get("/keys/{key_id:str}/revoke")
    async def confirm_revoke(
        self, request: Request[Any, Any, Any], state: State, key_id: FromPath[str]
    ) -> Template:
        keys = [k for k in await access.all_partner_keys(state.database) if k.key_id == key_id]
        if not keys:
            raise NotFound(f"no key {key_id}")
        return await _page(request, "confirm_revoke.html", key=keys[0])

    @post("/keys/{key_id:str}/revoke", status_code=303)
    async def revoke(
        self, request: Request[Any, Any, Any], state: State, key_id: FromPath[str]
    ) -> Redirect:
        revoking = partial(access.revoke_key, state.database, key_id)
        return await _act(request, Action.REVOKE_KEY, key_id, revoking, "/console/partners")

    # -- holds, deliveries, members --------------------------------------------------------

    @get("/holds")
    async def holds(
        self,
        request: Request[Any, Any, Any],
        state: State,
        after: Annotated[str | None, QueryParameter(name="after", max_length=100)] = None,
        partner_id: Annotated[str | None, QueryParameter(name="partner_id", max_length=100)] = None,
    ) -> Template:
        keyset = None
        if after:
            at, _, hold_id = after.partition("|")
            try:
                keyset = (_instant(at, "after"), UUID(hold_id))
            except ValueError as exc:
                raise InvalidRequest("after is not a page of this list", field="after") from exc
        partner = partner_id or None
        page = await state.holds.page(partner, status=HoldStatus.OPEN, after=keyset, limit=PAGE + 1)
        shown = page[:PAGE]
        next_after = (
            f"{shown[-1].created_at.isoformat()}|{shown[-1].hold_id}" if len(page) > PAGE else None
        )
        return await _page(
            request, "holds.html", holds=shown, next_after=next_after, partner_id=partner or ""
        )

    @get("/deliveries")
    async def deliveries(
        self,
        request: Request[Any, Any, Any],
        state: State,
        after: Annotated[int, QueryParameter(name="after", ge=0)] = 0,
    ) -> Template:
        page = await state.webhooks.deliveries("failed", after, PAGE + 1)
        shown = page[:PAGE]
        next_after = shown[-1].delivery_id if len(page) > PAGE else None
        return await _page(request, "deliveries.html", deliveries=shown, next_after=next_after)

    @post("/deliveries/{delivery_id:int}/replay", status_code=303)
    async def replay(
        self, request: Request[Any, Any, Any], state: State, delivery_id: FromPath[int]
    ) -> Redirect:
        replaying = partial(state.webhooks.replay, delivery_id)
        return await _act(
            request, Action.REPLAY, str(delivery_id), replaying, "/console/deliveries"
        )

    @get("/members/balance")
    async def balance(
        self,
        request: Request[Any, Any, Any],
        state: State,
        member_id: Annotated[str | None, QueryParameter(name="member_id", max_length=100)] = None,
        at: Annotated[str | None, QueryParameter(name="at", max_length=40)] = None,
    ) -> Template:
        found: int | None = None
        moment = None
        if member_id:
            moment = _instant(at, "at") if at else await ledger_time(state.database)
            found = await console.member_balance_at(state.database, member_id.strip(), moment)
            if found is None:
                raise NotFound("no such member")
        return await _page(
            request, "balance.html", member_id=member_id or "", at=moment, points=found
        )

    # -- the action log --------------------------------------------------------------------

    @get("/actions")
    async def action_log(
        self,
        request: Request[Any, Any, Any],
        state: State,
        before: Annotated[int | None, QueryParameter(name="before", ge=1)] = None,
    ) -> Template:
        page = await actions(state.database, before, PAGE + 1)
        shown = page[:PAGE]
        next_before = shown[-1].action_id if len(page) > PAGE else None
        return await _page(request, "actions.html", actions=shown, next_before=next_before)


def _settled(coalition: CoalitionStatement, statements: list[Any]) -> dict[str, Any]:
    positions = [
        (p.legal_name, Decimal(p.net), f"{Decimal(p.net):,.2f} {coalition.currency}")
        for p in coalition.partners
    ]
    rf = coalition.points_roll_forward
    roll = charts.waterfall(
        rf.opening,
        [
            ("Issued", rf.issued),
            ("Redeemed", -rf.redeemed),
            ("Expired", -rf.expired),
            ("Adjustments", rf.adjusted),
        ],
        "Closing",
    )
    return {
        "statement": coalition,
        "positions_chart": charts.diverging(positions),
        "roll_chart": roll,
        "version_nets": _partner_nets(statements),
        "words": DIRECTION_WORDS,
    }


def _disclosure_search(
    request: Request[Any, Any, Any],
) -> tuple[DisclosureFilter | None, tuple[datetime, int] | None, dict[str, str]]:
    """The search the query string asks for (None before a time range is given), the page's
    keyset, and the query as typed (for the form and the links)."""
    names = ("from", "to", "partner_id", "member_id", "purpose", "request_id")
    query = {n: str(request.query_params.get(n, "")).strip()[:200] for n in names}
    if not query["from"] or not query["to"]:
        return None, None, query
    search = DisclosureFilter(
        start=_instant(query["from"], "from"),
        end=_instant(query["to"], "to"),
        partner_id=query["partner_id"] or None,
        member_id=query["member_id"] or None,
        purpose=query["purpose"] or None,
        request_id=query["request_id"] or None,
    )
    after = None
    raw = str(request.query_params.get("after", ""))
    if raw:
        at, _, disclosure_id = raw.partition("|")
        if not disclosure_id.isdigit():
            raise InvalidRequest("after is not a page of this search", field="after")
        after = (_instant(at, "after"), int(disclosure_id))
    return search, after, query
