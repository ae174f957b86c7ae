"""The console through the ASGI app: sign-in and sessions, CSRF, auditors read only, escaping,
downloads equal to the API's bytes, the disclosure search against the API, a member's balance
as of a time, and the operator action log."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from clearhouse.config import Settings
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from clearhouse.storage import members as member_store
from clearhouse.web.console.sessions import cookie
from tests.conftest import fresh_database
from tests.web.harness import SignedApi, signed_api, utc_now
from tests.web.test_events_api import endpoint_request
from tests.web.test_holds_api import hold_request

BERLIN = ZoneInfo("Europe/Berlin")
PERIOD = "2030-05"
START = datetime(2030, 5, 1, tzinfo=BERLIN)
END = datetime(2030, 6, 1, tzinfo=BERLIN)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _token(database: Database, role: Role, label: str = "") -> str:
    issued = await access.create_token(database, role, utc_now() + timedelta(hours=1), label=label)
    return issued.secret


async def sign_in(client: httpx.AsyncClient, secret: str) -> str:
    """Signs ``client`` in (its cookie jar keeps the session); the page's CSRF token."""
    form = await client.get("/console/sign-in")
    token = CSRF.search(form.text)
    assert token is not None
    done = await client.post(
        "/console/sign-in", data={"csrf_token": token.group(1), "token": secret}
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/console/periods"
    page = await client.get("/console/periods")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def _client_like(api: SignedApi) -> httpx.AsyncClient:
    """Another browser on the same app: its own cookie jar."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url=api.settings.public_base_url
    )


async def _actions(database: Database) -> list[asyncpg.Record]:
    async with database.driver_connection() as connection:
        return list(
            await connection.fetch(
                "SELECT token_id, channel, action, subject, outcome FROM operator_actions"
                " ORDER BY action_id"
            )
        )


def _settlements(metrics: httpx.Response) -> float:
    found = re.search(r"^clearhouse_settlement_seconds_count (\S+)$", metrics.text, re.M)
    assert found is not None, metrics.text
    return float(found.group(1))


def _problem_code(response: httpx.Response) -> str:
    found = re.search(r'data-code="([a-z_]+)"', response.text)
    assert found is not None, response.text
    return found.group(1)


async def test_no_session_goes_to_sign_in_and_a_wrong_token_is_refused(api: SignedApi) -> None:
    away = await api.client.get("/console/periods")
    assert away.status_code == 303
    assert away.headers["location"] == "/console/sign-in"
    htmx = await api.client.get("/console/periods", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"] == "/console/sign-in"

    form = await api.client.get("/console/sign-in")
    token = CSRF.search(form.text)
    assert token is not None
    wrong = await api.client.post(
        "/console/sign-in", data={"csrf_token": token.group(1), "token": "chk_operator_nope"}
    )
    assert wrong.status_code == 401
    assert "wrong, expired or revoked" in wrong.text
    assert "clearhouse_console=" not in wrong.headers.get("set-cookie", "")


async def test_the_session_cookie_is_http_only_strict_and_secure_outside_a_sandbox(
    api: SignedApi,
) -> None:
    secret = await _token(api.database, Role.OPERATOR)
    form = await api.client.get("/console/sign-in")
    token = CSRF.search(form.text)
    assert token is not None
    done = await api.client.post(
        "/console/sign-in", data={"csrf_token": token.group(1), "token": secret}
    )
    session = next(c for c in done.headers.get_list("set-cookie") if "clearhouse_console=" in c)
    assert "HttpOnly" in session
    assert "samesite=strict" in session.lower()
    assert "Secure" not in session  # a sandbox on plain HTTP
    assert secret not in session  # the token is exchanged, never kept by the browser

    production = Settings.from_env({"CLEARHOUSE_MASTER_KEY": base64.b64encode(bytes(32)).decode()})
    header = cookie(production, "value", 60).to_header(header="")
    assert header.startswith("__Host-clearhouse_console=value")
    assert "Secure" in header
    assert "HttpOnly" in header
    assert "samesite=strict" in header.lower()


async def test_sign_in_needs_the_form_s_own_token(api: SignedApi) -> None:
    secret = await _token(api.database, Role.OPERATOR)
    refused = await api.client.post("/console/sign-in", data={"token": secret})
    assert refused.status_code == 403
    assert _problem_code(refused) == "csrf_failed"


async def test_pages_forbid_framing_and_load_nothing_from_elsewhere(api: SignedApi) -> None:
    await sign_in(api.client, await _token(api.database, Role.AUDITOR))
    page = await api.client.get("/console/periods")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert "no-store" in page.headers["cache-control"]
    assert not re.search(r'(src|href)="(https?:)?//', page.text)
    script = await api.client.get("/console/static/htmx-2.0.11.min.js")
    assert script.status_code == 200
    assert script.content.startswith(b"var htmx=")


async def test_sign_out_ends_the_session_and_so_does_revoking_its_token(api: SignedApi) -> None:
    csrf = await sign_in(api.client, await _token(api.database, Role.OPERATOR))
    cookies = dict(api.client.cookies)
    out = await api.client.post("/console/sign-out", data={"csrf_token": csrf})
    assert out.status_code == 303
    api.client.cookies.update(cookies)  # the old cookie, kept by an attacker
    again = await api.client.get("/console/periods")
    assert again.status_code == 303

    issued = await access.create_token(api.database, Role.AUDITOR, utc_now() + timedelta(hours=1))
    async with _client_like(api) as browser:
        await sign_in(browser, issued.secret)
        await access.revoke_token(api.database, issued.token_id)
        assert (await browser.get("/console/periods")).status_code == 303


async def test_every_change_needs_the_session_s_csrf_token(tmp_path: Path) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=END + timedelta(seconds=1))
        await sign_in(api.client, await _token(database, Role.OPERATOR))
        missing = await api.client.post(f"/console/periods/{PERIOD}/close")
        assert missing.status_code == 403
        assert _problem_code(missing) == "csrf_failed"
        malformed = await api.client.post("/console/periods/not-a-month/settle")
        assert _problem_code(malformed) == "csrf_failed"  # the token is looked at first

        async with _client_like(api) as other:
            others = await sign_in(other, await _token(database, Role.OPERATOR))
        wrong = await api.client.post(
            f"/console/periods/{PERIOD}/close", data={"csrf_token": others}
        )
        assert wrong.status_code == 403
        assert _problem_code(wrong) == "csrf_failed"
        header = await api.client.post(
            f"/console/periods/{PERIOD}/close", headers={"X-CSRF-Token": others}
        )
        assert header.status_code == 403

        periods = await api.client.get("/console/periods")
        assert f'href="/console/periods/{PERIOD}"' not in periods.text  # nothing was closed
        assert await _actions(database) == []


async def test_an_auditor_reads_but_may_not_close(tmp_path: Path) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=END + timedelta(seconds=1))
        csrf = await sign_in(api.client, await _token(database, Role.AUDITOR))
        confirm = await api.client.get(f"/console/periods/{PERIOD}/close")
        assert confirm.status_code == 200
        assert '<form method="post" action="/console/periods/' not in confirm.text
        refused = await api.client.post(
            f"/console/periods/{PERIOD}/close", data={"csrf_token": csrf}
        )
        assert refused.status_code == 403
        assert _problem_code(refused) == "forbidden"
        closed = await api.client.get(f"/console/periods/{PERIOD}")
        assert closed.status_code == 404


async def test_a_month_closed_and_settled_in_the_console(tmp_path: Path) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=START + timedelta(hours=1))
        bakery = await api.partner("bakery")
        fuel = await api.partner("fuel")
        member = await api.member()
        await api.issued(bakery, member, 700)
        await api.accepted(api.points("redeem", fuel, member, 200))

        operator = await access.create_token(
            database, Role.OPERATOR, utc_now() + timedelta(hours=1), label="month end"
        )
        csrf = await sign_in(api.client, operator.secret)
        early = await api.client.post(f"/console/periods/{PERIOD}/close", data={"csrf_token": csrf})
        assert early.status_code == 409
        assert _problem_code(early) == "period_not_ended"

        await set_ledger_time(database, sandbox=True, at=END + timedelta(seconds=1))
        listed = await api.client.get("/console/periods")
        assert f"/console/periods/{PERIOD}/close" in listed.text
        confirm = await api.client.get(f"/console/periods/{PERIOD}/close")
        assert "cannot be undone" in confirm.text
        assert "<strong>2</strong> entries" in confirm.text
        closed = await api.client.post(
            f"/console/periods/{PERIOD}/close", data={"csrf_token": csrf}
        )
        assert closed.status_code == 303

        preview = await api.client.get(f"/console/periods/{PERIOD}/settle")
        # 700 issued at 0.0100 by the bakery: it pays 7.00; 200 redeemed at 0.0080 at the fuel
        # station: the coalition pays it 1.60 (no fees in the builders' contracts).
        assert "-7.00" in preview.text
        assert "1.60" in preview.text
        assert "the partner pays the coalition" in preview.text
        bearer = {"Authorization": f"Bearer {operator.secret}"}
        settlements_before = _settlements(await api.client.get("/metrics", headers=bearer))
        settled = await api.client.post(
            f"/console/periods/{PERIOD}/settle", data={"csrf_token": csrf}
        )
        # Measured where it ran: in the serving process.
        settlements_after = _settlements(await api.client.get("/metrics", headers=bearer))
        assert settlements_after == settlements_before + 1
        assert settled.status_code == 303
        assert settled.headers["location"] == f"/console/periods/{PERIOD}/statements"

        page = await api.client.get(f"/console/periods/{PERIOD}")
        assert 'id="net-positions"' in page.text
        assert 'id="roll-forward"' in page.text
        assert re.search(r'id="multilateral-check">0\.00<', page.text)
        statements = await api.client.get(f"/console/periods/{PERIOD}/statements")
        assert "<strong>verifies</strong>" in statements.text

        auditor = {"Authorization": f"Bearer {await _token(database, Role.AUDITOR)}"}
        for party in ("coalition", bakery.partner_id):
            path = f"/v1/audit/statements/{PERIOD}" + ("" if party == "coalition" else f"/{party}")
            xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            for fmt, accept in (("json", "application/json"), ("xlsx", xlsx)):
                ours = await api.client.get(f"/console/statements/{PERIOD}/{party}?format={fmt}")
                theirs = await api.client.get(path, headers={**auditor, "Accept": accept})
                assert ours.status_code == theirs.status_code == 200
                assert ours.content == theirs.content
                assert ours.headers["content-type"].startswith(accept)

        api_close = await api.client.post(
            f"/v1/admin/periods/{PERIOD}/close",
            headers={"Authorization": f"Bearer {operator.secret}"},
        )
        assert api_close.status_code == 200
        log = [tuple(r) for r in await _actions(database)]
        assert log == [
            (operator.token_id, "console", "period.close", PERIOD, "period_not_ended"),
            (operator.token_id, "console", "period.close", PERIOD, "done"),
            (operator.token_id, "console", "period.settle", PERIOD, "done"),
            (operator.token_id, "api", "period.close", PERIOD, "done"),
        ]
        shown = await api.client.get("/console/actions")
        assert shown.text.count('<tr class="action">') == 4
        assert "month end" in shown.text


async def test_the_action_log_is_append_only(api: SignedApi) -> None:
    operator = {"Authorization": f"Bearer {await _token(api.database, Role.OPERATOR)}"}
    await api.client.post("/v1/admin/keys/no-such-key/revoke", headers=operator)
    rows = await _actions(api.database)
    assert [(r["action"], r["outcome"]) for r in rows][-1:] == [("key.revoke", "not_found")]
    async with api.database.driver_connection() as connection:
        for statement in (
            "UPDATE operator_actions SET outcome = 'done'",
            "DELETE FROM operator_actions",
            "TRUNCATE operator_actions",
        ):
            with pytest.raises(asyncpg.PostgresError):
                await connection.execute(statement)


async def test_what_a_partner_sent_is_shown_as_text(api: SignedApi) -> None:
    partner = await api.partner("shop")
    member = await api.member()
    await api.issued(partner, member, 100)
    script = "<script>alert('x')</script>"
    await api.accepted(hold_request(api, partner, member, 10, reference=script), 201)
    await sign_in(api.client, await _token(api.database, Role.AUDITOR))
    holds = await api.client.get("/console/holds", params={"partner_id": partner.partner_id})
    assert script not in holds.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in holds.text


async def test_the_disclosure_search_pages_through_the_api_s_rows(api: SignedApi) -> None:
    partner = await api.partner("grocer")
    member = await api.member()
    started = utc_now() - timedelta(seconds=1)
    async with api.database.driver_connection() as connection:
        for n in range(123):
            purpose = "customer_service" if n % 3 else "marketing"
            await member_store.insert_disclosure(
                connection,
                partner.partner_id,
                member,
                purpose,
                ["member.balance"],
                1,
                "contract",
                f"req-{n}",
            )
    ended = utc_now() + timedelta(seconds=1)
    window = {"from": started.isoformat(), "to": ended.isoformat()}
    auditor_secret = await _token(api.database, Role.AUDITOR)
    from_api = await api.client.get(
        "/v1/audit/disclosures",
        params=window,
        headers={"Authorization": f"Bearer {auditor_secret}"},
    )
    expected = [r["request_id"] for r in from_api.json() if r["purpose"] == "customer_service"]
    assert len(expected) == 82  # n % 3 != 0 for 82 of 0..122

    await sign_in(api.client, auditor_secret)
    seen: list[str] = []
    query: dict[str, str] = {**window, "purpose": "customer_service"}
    pages = 0
    while True:
        page = await api.client.get("/console/disclosures", params=query)
        assert page.status_code == 200, page.text
        seen += re.findall(r"<code>(req-\d+)</code>", page.text)
        pages += 1
        after = re.search(r'rel="next" href="[^"]*after=([^"&]+)"', page.text)
        if after is None:
            break
        query["after"] = httpx.QueryParams(f"after={after.group(1)}")["after"]
    assert pages == 2
    assert seen == expected

    csv = await api.client.get(
        "/console/disclosures/export", params={**window, "purpose": "customer_service"}
    )
    assert csv.headers["content-type"].startswith("text/csv")
    from_api_csv = await api.client.get(
        "/v1/audit/disclosures",
        params=window,
        headers={"Authorization": f"Bearer {auditor_secret}", "Accept": "text/csv"},
    )
    kept = [
        line
        for line in from_api_csv.text.splitlines()
        if '"customer_service"' in line or line.startswith('"disclosed_at"')
    ]
    assert csv.text.splitlines() == kept


async def test_a_member_s_balance_as_of_a_time(api: SignedApi) -> None:
    partner = await api.partner("cafe")
    member = await api.member()
    await api.issued(partner, member, 100)
    between = utc_now()
    await api.accepted(api.points("redeem", partner, member, 30))
    await sign_in(api.client, await _token(api.database, Role.AUDITOR))
    then = await api.client.get(
        "/console/members/balance", params={"member_id": member, "at": between.isoformat()}
    )
    assert "<strong>100</strong> points" in then.text
    now = await api.client.get("/console/members/balance", params={"member_id": member})
    assert "<strong>70</strong> points" in now.text
    before = await api.client.get(
        "/console/members/balance",
        params={"member_id": member, "at": (between - timedelta(days=1)).isoformat()},
    )
    assert "<strong>0</strong> points" in before.text
    unknown = await api.client.get("/console/members/balance", params={"member_id": "nobody"})
    assert unknown.status_code == 404
    assert _problem_code(unknown) == "not_found"


async def test_a_key_revoked_in_the_console_signs_nothing_more(api: SignedApi) -> None:
    partner = await api.partner("kiosk")
    member = await api.member()
    await api.issued(partner, member, 10)
    operator = await access.create_token(
        api.database, Role.OPERATOR, utc_now() + timedelta(hours=1)
    )
    csrf = await sign_in(api.client, operator.secret)
    listed = await api.client.get("/console/partners")
    assert f"/console/keys/{partner.key.key_id}/revoke" in listed.text
    confirm = await api.client.get(f"/console/keys/{partner.key.key_id}/revoke")
    assert "unknown_key" in confirm.text
    revoked = await api.client.post(
        f"/console/keys/{partner.key.key_id}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    await api.refused(api.points("issue", partner, member, 5), 401, "unknown_key")
    log = [tuple(r) for r in await _actions(api.database) if r["token_id"] == operator.token_id]
    assert log == [(operator.token_id, "console", "key.revoke", partner.key.key_id, "done")]


async def test_a_failed_delivery_replayed_from_the_console(api: SignedApi) -> None:
    partner = await api.partner("hooks")
    made = await api.accepted(endpoint_request(api, partner))
    member = await api.member()
    await api.issued(partner, member, 10)
    async with api.database.driver_connection() as connection:
        delivery_id = await connection.fetchval(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = 10"
            " WHERE endpoint_id = $1 RETURNING delivery_id",
            made["endpoint_id"],
        )
    auditor_csrf = await sign_in(api.client, await _token(api.database, Role.AUDITOR))
    page = await api.client.get("/console/deliveries")
    assert f'<td class="num">{delivery_id}</td>' in page.text
    assert f"/console/deliveries/{delivery_id}/replay" not in page.text  # auditors read only
    refused = await api.client.post(
        f"/console/deliveries/{delivery_id}/replay", data={"csrf_token": auditor_csrf}
    )
    assert refused.status_code == 403

    async with _client_like(api) as browser:
        operator = await access.create_token(
            api.database, Role.OPERATOR, utc_now() + timedelta(hours=1)
        )
        csrf = await sign_in(browser, operator.secret)
        replayed = await browser.post(
            f"/console/deliveries/{delivery_id}/replay", data={"csrf_token": csrf}
        )
        assert replayed.status_code == 303
    async with api.database.driver_connection() as connection:
        status = await connection.fetchval(
            "SELECT status FROM webhook_deliveries WHERE delivery_id = $1", delivery_id
        )
    assert status == "pending"
    log = [tuple(r) for r in await _actions(api.database) if r["token_id"] == operator.token_id]
    assert log == [(operator.token_id, "console", "delivery.replay", str(delivery_id), "done")]
