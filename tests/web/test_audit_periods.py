"""Auditors read the sealed periods: every closed month with its tree head and chained root,
settled or not (``GET /v1/audit/periods[/{period}]``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from clearhouse.domain.periods import period_of
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from tests.conftest import fresh_database
from tests.web.harness import SignedApi, assert_problem, signed_api, utc_now
from tests.web.test_clearing_api import BERLIN, END, PERIOD, START


async def bearer(database: Database, role: Role) -> dict[str, str]:
    token = await access.create_token(database, role, utc_now() + timedelta(hours=1))
    return {"Authorization": f"Bearer {token.secret}"}


def tree_head(leaves: list[bytes]) -> bytes:
    """RFC 9162's Merkle tree head, written out again here so that the test does not lean on
    the code it checks."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + tree_head(leaves[:split]) + tree_head(leaves[split:])).digest()


async def test_auditors_list_closed_periods_and_read_an_unsettled_months_root(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=START + timedelta(hours=1))
        operator = await bearer(database, Role.OPERATOR)
        auditor = await bearer(database, Role.AUDITOR)
        partner = await api.partner("bakery")
        member = await api.member()
        await api.issued(partner, member, 700)
        await api.accepted(api.points("redeem", partner, member, 200))
        await set_ledger_time(database, sandbox=True, at=END + timedelta(seconds=1))
        closed = await api.client.post(f"/v1/admin/periods/{PERIOD}/close", headers=operator)
        assert closed.status_code == 200, closed.text

        listed = await api.client.get("/v1/audit/periods", headers=auditor)
        assert listed.status_code == 200, listed.text
        one = await api.client.get(f"/v1/audit/periods/{PERIOD}", headers=auditor)
        assert one.status_code == 200, one.text
        assert listed.json() == [one.json()]
        sealed = one.json()
        assert {k: sealed[k] for k in ("period", "status", "entry_count", "settled_at")} == {
            "period": PERIOD,
            "status": "closed",
            "entry_count": 2,
            "settled_at": None,
        }
        assert sealed["previous_root"] == bytes(32).hex()
        assert (sealed["starts_at"], sealed["ends_at"]) == (
            "2030-02-28T23:00:00.000000Z",
            "2030-03-31T22:00:00.000000Z",
        )
        assert sealed["closed_at"] == closed.json()["closed_at"]
        assert sealed["root"] == closed.json()["root"]
        # The root is what the month's canonical entries give, recomputed from scratch.
        lines = await api.client.get(f"/v1/audit/periods/{PERIOD}/entries", headers=auditor)
        head = tree_head(lines.content.splitlines())
        assert sealed["tree_head"] == head.hex()
        assert sealed["root"] == hashlib.sha256(bytes(32) + head).hexdigest()

        settled = await api.client.post(f"/v1/admin/periods/{PERIOD}/settle", headers=operator)
        assert settled.status_code == 200, settled.text
        after = (await api.client.get(f"/v1/audit/periods/{PERIOD}", headers=auditor)).json()
        assert after["status"] == "settled"
        assert after["settled_at"] is not None
        assert after["settled_at"] == settled.json()["settled_at"]
        assert after["root"] == sealed["root"]

        # The next month chains to this one's root.
        await set_ledger_time(
            database, sandbox=True, at=END.replace(month=5) + timedelta(seconds=1)
        )
        april = await api.client.post("/v1/admin/periods/2030-04/close", headers=operator)
        assert april.status_code == 200, april.text
        periods = (await api.client.get("/v1/audit/periods", headers=auditor)).json()
        assert [p["period"] for p in periods] == [PERIOD, "2030-04"]
        assert periods[1]["previous_root"] == sealed["root"]


async def test_the_period_endpoints_refuse_a_partner_signature_and_a_call_without_a_token(
    api: SignedApi,
) -> None:
    partner = await api.partner("bakery")
    for path in ("/v1/audit/periods", f"/v1/audit/periods/{PERIOD}"):
        assert_problem(await api.send(api.request("GET", path, partner)), 401, "invalid_token")
        assert_problem(await api.client.get(path), 401, "invalid_token")


async def test_an_open_or_unknown_period_is_not_found_and_a_malformed_one_invalid_request(
    api: SignedApi,
) -> None:
    auditor = await bearer(api.database, Role.AUDITOR)
    this_month = period_of(utc_now(), BERLIN)
    for period in (this_month, "2099-12"):
        missing = await api.client.get(f"/v1/audit/periods/{period}", headers=auditor)
        assert_problem(missing, 404, "not_found")
    for period in ("2030-13", "2030-3", "march", "0999-12"):
        malformed = await api.client.get(f"/v1/audit/periods/{period}", headers=auditor)
        assert_problem(malformed, 400, "invalid_request")


async def test_the_period_routes_and_settling_document_their_problems(api: SignedApi) -> None:
    paths = (await api.client.get("/schema/openapi.json")).json()["paths"]

    def codes(path: str, method: str) -> dict[str, str]:
        responses: dict[str, Any] = paths[path][method]["responses"]
        return {
            status: response["description"]
            for status, response in responses.items()
            if int(status) >= 400 and set(response["content"]) == {"application/problem+json"}
        }

    assert "`invalid_token`" in codes("/v1/audit/periods", "get")["401"]
    one = codes("/v1/audit/periods/{period}", "get")
    assert "`invalid_request`" in one["400"]
    assert "`invalid_token`" in one["401"]
    assert "`not_found`" in one["404"]
    assert "`settlement_refused`" in codes("/v1/admin/periods/{period}/settle", "post")["409"]
