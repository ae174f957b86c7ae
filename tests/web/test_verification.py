"""Verification that says what it checked, partner evidence that stands alone, and coalition
keys with a history: each in a database of its own (the sandbox clock moves months ahead)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from click.testing import CliRunner, Result

from clearhouse.cli import main
from clearhouse.services import access, coalition_keys
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from clearhouse_client import AsyncPartnerClient, ResponseNotSigned
from tests.conftest import _dsn, fresh_database
from tests.web.harness import Partner, SignedApi, signed_api, utc_now
from tests.web.signing import verify_receipt

BERLIN = ZoneInfo("Europe/Berlin")
MARCH, APRIL = "2031-03", "2031-04"
MARCH_START = datetime(2031, 3, 1, 9, tzinfo=BERLIN)
APRIL_START = datetime(2031, 4, 1, 9, tzinfo=BERLIN)
MAY_START = datetime(2031, 5, 1, 0, 0, 5, tzinfo=BERLIN)


def _url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


async def _cli(database: Database, tmp_path: Path, *args: str, **more: str) -> Result:
    """``clearhouse …`` on ``database``, in a thread (the command runs its own event loop)."""
    env = {
        "DATABASE_URL": _url(database),
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(tmp_path / "cli"),
        **more,
    }
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def _operator(database: Database) -> dict[str, str]:
    token = await access.create_token(database, Role.OPERATOR, utc_now() + timedelta(hours=1))
    return {"Authorization": f"Bearer {token.secret}"}


async def _month_of_traffic(api: SignedApi, partner: Partner, start: datetime) -> dict[str, Any]:
    """A signed issue, redeem and reversal in the month that ``start`` begins; the issue."""
    await set_ledger_time(api.database, sandbox=True, at=start)
    member = await api.member()
    issued = await api.issued(partner, member, 500)
    await api.accepted(api.points("redeem", partner, member, 120))
    await api.accepted(api.reversal(partner, issued, 30))
    return issued


async def _settle(api: SignedApi, period: str, after: datetime) -> None:
    await set_ledger_time(api.database, sandbox=True, at=after)
    settled = await api.client.post(
        f"/v1/admin/periods/{period}/settle", headers=await _operator(api.database)
    )
    assert settled.status_code == 200, settled.text


@asynccontextmanager
async def _settled_march(tmp_path: Path) -> AsyncIterator[tuple[Database, SignedApi]]:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        partner = await api.partner("bakery")
        await _month_of_traffic(api, partner, MARCH_START)
        await _settle(api, MARCH, APRIL_START)
        yield database, api


@asynccontextmanager
async def _raw(database: Database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(_dsn(_url(database)))
    try:
        yield connection
    finally:
        await connection.close()


# --- what is checked, and nonsense refused ---------------------------------------------------


@pytest.mark.parametrize("period", ["banana", "202611", "2026-13", "2026-1"])
async def test_a_malformed_period_is_an_invalid_request_with_exit_2(
    tmp_path: Path, period: str
) -> None:
    async with fresh_database() as database:
        result = await _cli(database, tmp_path, "audit", "verify", "--period", period)
    assert result.exit_code == 2, result.output
    assert "invalid_request" in result.output
    assert "verifies" not in result.output


async def test_an_empty_ledger_has_nothing_to_verify_and_fails(tmp_path: Path) -> None:
    async with fresh_database() as database:
        result = await _cli(database, tmp_path, "audit", "verify")
        as_json = await _cli(database, tmp_path, "audit", "verify", "--json")
    assert result.exit_code == 1
    assert result.output.strip() == "nothing to verify: no closed period"
    assert json.loads(as_json.output)["outcome"] == "nothing_to_verify"


async def test_a_period_that_is_not_closed_says_so_and_fails(tmp_path: Path) -> None:
    async with _settled_march(tmp_path) as (database, _):
        for period in ("2099-01", APRIL):
            result = await _cli(database, tmp_path, "audit", "verify", "--period", period)
            assert result.exit_code == 1, result.output
            assert f"period {period}: period: is not closed" in result.output
            assert "verifies" not in result.output


async def test_a_settled_month_verifies_with_the_counts_of_what_was_checked(
    tmp_path: Path,
) -> None:
    async with _settled_march(tmp_path) as (database, api):
        result = await _cli(database, tmp_path, "audit", "verify", "--period", MARCH)
        as_json = await _cli(database, tmp_path, "audit", "verify", "--json")
        over_http = await api.client.get(
            "/v1/audit/verify", params={"period": MARCH}, headers=await _operator(database)
        )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "verifies: 1 period(s), 3 entries, 2 statement hash(es), 2 statement signature(s), "
        "3 partner signature(s) on entries (0 entries without one: operator or settlement)"
    )
    report = json.loads(as_json.output)
    assert report["outcome"] == "verifies"
    assert report["checked"] == {
        "periods": 1,
        "entries": 3,
        "statement_hashes": 2,
        "statement_signatures": 2,
        "partner_signatures": 3,
        "entries_without_partner_signature": 0,
    }
    assert over_http.json()["checked"]["partner_signatures"] == 3
    assert over_http.json()["verified"] is True


async def test_a_malformed_period_over_http_is_invalid_request(tmp_path: Path) -> None:
    async with _settled_march(tmp_path) as (database, api):
        response = await api.client.get(
            "/v1/audit/verify", params={"period": "banana"}, headers=await _operator(database)
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


# --- tampering is named ------------------------------------------------------------------


async def test_a_tampered_entry_statement_and_partner_signature_are_each_named(
    tmp_path: Path,
) -> None:
    async with _settled_march(tmp_path) as (database, _):
        async with _raw(database) as connection:
            entries = await connection.fetch(
                "SELECT entry_id, kind FROM entries WHERE signature IS NOT NULL ORDER BY kind"
            )
            by_kind = {row["kind"]: row["entry_id"] for row in entries}
            await connection.execute("ALTER TABLE entries DISABLE TRIGGER entries_append_only")
            await connection.execute(
                "ALTER TABLE statements DISABLE TRIGGER statements_append_only"
            )
            # The signature of the redeem, and the base of the issue (its purpose).
            await connection.execute(
                "UPDATE entries SET signature = overlay(signature placing"
                " CASE substr(signature, 8, 1) WHEN 'A' THEN 'B' ELSE 'A' END from 8)"
                " WHERE entry_id = $1",
                by_kind["redeem"],
            )
            await connection.execute(
                "UPDATE entries SET signature_base = replace(signature_base,"
                " '\"data-purpose\": accrual', '\"data-purpose\": redemption')"
                " WHERE entry_id = $1",
                by_kind["issue"],
            )
            await connection.execute(
                "UPDATE statements SET signature = set_byte(signature, 0,"
                " (get_byte(signature, 0) + 1) % 256) WHERE party = 'coalition'"
            )
        result = await _cli(database, tmp_path, "audit", "verify", "--json")
    assert result.exit_code == 1
    problems = {(p["subject"], p["problem"]) for p in json.loads(result.output)["problems"]}
    issue, redeem = f"entry {by_kind['issue']}", f"entry {by_kind['redeem']}"
    assert ("period", "the ledger root does not match") in problems
    assert any(s == redeem and "does not verify" in p for s, p in problems)
    assert any(s == issue and "another purpose" in p for s, p in problems)
    assert any(s == issue and "does not verify" in p for s, p in problems)
    assert any(s == "statement coalition" and "signature does not verify" in p for s, p in problems)
    assert not any(s.startswith("entry") and "reversal" in p for s, p in problems)


async def test_every_partner_entry_line_carries_the_base_its_partner_signed(
    tmp_path: Path,
) -> None:
    async with _settled_march(tmp_path) as (database, api):
        lines = await api.client.get(
            f"/v1/audit/periods/{MARCH}/entries", headers=await _operator(database)
        )
    entries = [json.loads(line) for line in lines.text.splitlines()]
    assert [e["evidence"] for e in entries] == ["partner_signature"] * 3
    for entry in entries:
        base = entry["signature_base"].split("\n")
        assert base[0] == '"@method": POST'
        assert base[-1].startswith('"@signature-params": (')
        assert entry["signature_input"].split("=", 1)[1] == base[-1].split(": ", 1)[1]


async def test_operator_and_settlement_entries_say_they_have_no_partner_signature(
    tmp_path: Path,
) -> None:
    async with _settled_march(tmp_path) as (database, api):
        operator = await _operator(database)
        member = await api.member()
        adjusted = await _cli(
            database, tmp_path, "member", "adjust", member, "--points", "5", "--reason", "goodwill"
        )
        assert adjusted.exit_code == 0, adjusted.output
        await set_ledger_time(database, sandbox=True, at=MAY_START)
        closed = await api.client.post(f"/v1/admin/periods/{APRIL}/close", headers=operator)
        assert closed.status_code == 200, closed.text
        lines = await api.client.get(f"/v1/audit/periods/{APRIL}/entries", headers=operator)
        result = await _cli(database, tmp_path, "audit", "verify", "--period", APRIL, "--json")
    evidence = sorted(json.loads(line)["evidence"] for line in lines.text.splitlines())
    assert evidence == ["operator", "settlement"]
    assert json.loads(result.output)["checked"]["entries_without_partner_signature"] == 2


# --- coalition keys with a history -------------------------------------------------------


async def test_statements_and_receipts_verify_across_a_rotation_of_the_coalition_key(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database:
        async with signed_api(database, tmp_path) as before:
            partner = await before.partner("bakery")
            issued = await _month_of_traffic(before, partner, MARCH_START)
            receipt = await before.send(before.points("issue", partner, issued["member_id"], 7))
            await _settle(before, MARCH, APRIL_START)
            first_key = next(iter(before.coalition_keys))
        retired, current = await coalition_keys.rotate(database, before.settings.signing_key_file)
        assert retired == first_key
        async with signed_api(database, tmp_path) as after:
            await _month_of_traffic(after, partner, APRIL_START)
            await _settle(after, APRIL, MAY_START)
            keys = (await after.client.get("/v1/keys")).json()["keys"]
            statements = {
                period: (
                    await after.client.get(
                        f"/v1/audit/statements/{period}", headers=await _operator(database)
                    )
                ).json()["integrity"]["key_id"]
                for period in (MARCH, APRIL)
            }
            verify_receipt(receipt, after.coalition_keys)  # given before the rotation
        result = await _cli(database, tmp_path, "audit", "verify", "--json")
    assert [(k["key_id"], k["status"]) for k in keys] == [
        (first_key, "retired"),
        (current.key_id, "current"),
    ]
    assert keys[0]["not_after"] is not None
    assert keys[1]["not_after"] is None
    assert statements == {MARCH: first_key, APRIL: current.key_id}
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["checked"]["statement_signatures"] == 4


async def test_a_retired_coalition_key_never_signs_again(tmp_path: Path) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await _settle(api, MARCH, APRIL_START)  # registers the first key
        old_file = api.settings.signing_key_file.read_bytes()
        await coalition_keys.rotate(database, api.settings.signing_key_file)
        api.settings.signing_key_file.write_bytes(old_file)
        result = await _cli(
            database,
            tmp_path,
            "settle",
            APRIL,
            CLEARHOUSE_SIGNING_KEY_FILE=str(api.settings.signing_key_file),
        )
    assert result.exit_code != 0
    assert "retired" in result.output


class _Switchable(httpx.AsyncBaseTransport):
    """One client's transport, moved from one app to the next (a server restarted)."""

    def __init__(self, app: Any) -> None:
        self.to(app)

    def to(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)


async def test_a_client_that_fetched_the_keys_learns_the_rotated_key_and_a_pinned_one_refuses(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as before:
        partner = await before.partner("bakery")
        member = await before.member()
        transport = _Switchable(before.app)
        fetched = AsyncPartnerClient(
            before.base_url,
            key_id=partner.key.key_id,
            private_key=partner.key.private_key,
            transport=transport,
        )
        pinned = AsyncPartnerClient(
            before.base_url,
            key_id=partner.key.key_id,
            private_key=partner.key.private_key,
            coalition_keys=before.coalition_keys,
            transport=transport,
        )
        await fetched.issue(member, 5, reference="before")
        await coalition_keys.rotate(database, before.settings.signing_key_file)
        async with signed_api(database, tmp_path) as after:
            transport.to(after.app)
            issued = await fetched.issue(member, 5, reference="after")
            with pytest.raises(ResponseNotSigned):
                await pinned.issue(member, 5, reference="after, pinned")
        await fetched.aclose()
        await pinned.aclose()
    assert issued.member_balance == 10
