"""Periods and statements through the HTTP API, in a database of their own (the sandbox clock
moves a month ahead)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import rfc8785

from clearhouse.crypto.ed25519 import verify
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from tests.conftest import fresh_database
from tests.statements.schema_check import assert_served_as_the_schema_says
from tests.web.harness import assert_problem, signed_api, utc_now

BERLIN = ZoneInfo("Europe/Berlin")
PERIOD = "2030-03"
START = datetime(2030, 3, 1, tzinfo=BERLIN)
END = datetime(2030, 4, 1, tzinfo=BERLIN)


async def test_a_month_through_the_api(tmp_path: Path) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=START + timedelta(hours=1))
        operator_token = await access.create_token(
            database, Role.OPERATOR, utc_now() + timedelta(hours=1)
        )
        auditor_token = await access.create_token(
            database, Role.AUDITOR, utc_now() + timedelta(hours=1)
        )
        operator = {"Authorization": f"Bearer {operator_token.secret}"}
        auditor = {"Authorization": f"Bearer {auditor_token.secret}"}
        partner = await api.partner("bakery")
        member = await api.member()
        await api.issued(partner, member, 700)
        await api.accepted(api.points("redeem", partner, member, 200))

        early = await api.client.post(f"/v1/admin/periods/{PERIOD}/close", headers=operator)
        assert_problem(early, 409, "period_not_ended")

        await set_ledger_time(database, sandbox=True, at=END + timedelta(seconds=1))
        settled = await api.client.post(f"/v1/admin/periods/{PERIOD}/settle", headers=operator)
        assert settled.status_code == 200, settled.text
        assert settled.json()["status"] == "settled"
        assert settled.json()["entries"] == 2

        own = await api.accepted(api.request("GET", f"/v1/statements/{PERIOD}", partner), 200)
        assert own["partner_id"] == partner.partner_id
        assert own["period"] == PERIOD
        document = {k: v for k, v in own.items() if k != "integrity"}
        canonical = rfc8785.dumps(document)
        assert hashlib.sha256(canonical).hexdigest() == own["integrity"]["sha256"]
        keys = api.coalition_keys
        assert verify(
            keys[own["integrity"]["key_id"]],
            base64.b64decode(own["integrity"]["signature"]),
            canonical,
        )

        coalition = await api.client.get(f"/v1/audit/statements/{PERIOD}", headers=auditor)
        assert coalition.json()["multilateral_check"] == "0.00"
        same = await api.client.get(
            f"/v1/audit/statements/{PERIOD}/{partner.partner_id}", headers=auditor
        )
        assert same.json() == own
        # Served as signed: the canonical document, then its integrity block.
        integrity = rfc8785.dumps(own["integrity"])
        assert same.content == canonical[:-1] + b',"integrity":' + integrity + b"}"
        assert same.content in settled.content  # settling answers with the same statements
        assert own in settled.json()["statements"]
        assert_served_as_the_schema_says(own)
        assert_served_as_the_schema_says(coalition.json())
        assert coalition.json()["partner_id"] is None
        lines = await api.client.get(f"/v1/audit/periods/{PERIOD}/entries", headers=auditor)
        entries = [json.loads(line) for line in lines.text.splitlines()]
        assert [e["kind"] for e in entries] == ["issue", "redeem"]
        assert all(rfc8785.dumps(e) in lines.content for e in entries)
        verified = await api.client.get("/v1/audit/verify", headers=auditor)
        assert verified.json()["verified"] is True, verified.json()["problems"]
        assert verified.json()["problems"] == []
        assert verified.json()["checked"] == {
            "periods": 1,
            "entries": 2,
            "statement_hashes": 2,
            "statement_signatures": 2,
            "partner_signatures": 2,
            "entries_without_partner_signature": 0,
        }

        refused = await api.client.post(f"/v1/admin/periods/{PERIOD}/close", headers=auditor)
        assert_problem(refused, 403, "forbidden")
        missing = await api.client.get("/v1/audit/statements/2030-01", headers=auditor)
        assert_problem(missing, 404, "not_found")
