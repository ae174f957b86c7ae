"""Members, consents, contracts and the disclosure log through the HTTP API."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import openpyxl
import pandas as pd

from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.contracts import load_contracts
from clearhouse.services.database import Database
from tests.services.builders import contract_toml, unique
from tests.web.harness import Partner, SignedApi, assert_problem, utc_now
from tests.web.signing import PartnerKey

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERSONAL = {
    "given_name": "Jana",
    "family_name": "Nowak",
    "email": "jana.nowak@example.org",
    "birth_date": "1990-07-01",
    "postal_code": "04109",
}


async def _bearer(database: Database, role: Role) -> dict[str, str]:
    token = await access.create_token(database, role, utc_now() + timedelta(hours=1))
    return {"Authorization": f"Bearer {token.secret}"}


async def _enrol(api: SignedApi, partner: Partner, **consents: bool) -> str:
    body = {
        "personal": PERSONAL,
        "consents": [{"purpose": p, "granted": g} for p, g in consents.items()],
    }
    enrolled = await api.accepted(
        api.request("POST", "/v1/members", partner, body=body, purpose="enrolment")
    )
    return str(enrolled["member_id"])


def _read(api: SignedApi, partner: Partner, member_id: str, purpose: str) -> Any:
    return api.request("GET", f"/v1/members/{member_id}", partner, purpose=purpose)


async def test_a_partner_gets_only_the_fields_its_purpose_grants(api: SignedApi) -> None:
    partner = await api.partner()
    member_id = await _enrol(api, partner, marketing=True)
    service = await api.accepted(_read(api, partner, member_id, "customer_service"), 200)
    assert service["given_name"] == PERSONAL["given_name"]
    assert service["family_name"] == PERSONAL["family_name"]
    assert service["balance"] == 0
    assert service["transactions"] == []
    assert {"email", "birth_date", "postal_code"}.isdisjoint(service)
    marketing = await api.accepted(_read(api, partner, member_id, "marketing"), 200)
    assert set(marketing) == {"member_id", "purpose", "contract_version", "email", "given_name"}


async def test_refusals_for_purpose_and_consent(api: SignedApi) -> None:
    partner = await api.partner()
    member_id = await _enrol(api, partner)
    await api.refused(_read(api, partner, member_id, "analytics"), 403, "purpose_not_permitted")
    await api.refused(_read(api, partner, member_id, "marketing"), 403, "consent_required")
    await api.refused(_read(api, partner, member_id, "shopping"), 400, "invalid_request")
    await api.refused(_read(api, partner, "nobody-here", "customer_service"), 404, "not_found")


async def test_a_withdrawal_binds_the_next_request(api: SignedApi) -> None:
    partner = await api.partner()
    member_id = await _enrol(api, partner, marketing=True)
    await api.accepted(_read(api, partner, member_id, "marketing"), 200)
    withdrawn = await api.accepted(
        api.request(
            "PUT",
            f"/v1/members/{member_id}/consents",
            partner,
            body={"consents": [{"purpose": "marketing", "granted": False}]},
            purpose="consent_management",
        ),
        200,
    )
    assert [c["granted"] for c in withdrawn["consents"]] == [True, False]
    await api.refused(_read(api, partner, member_id, "marketing"), 403, "consent_required")


async def test_partner_a_never_sees_partner_bs_entries_or_consents(api: SignedApi) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await _enrol(api, b, marketing=True)
    await api.issued(b, member_id, 40)
    await api.enrolled(a, member_id=member_id)  # the card, linked at A too
    seen_by_a = await api.accepted(_read(api, a, member_id, "customer_service"), 200)
    assert seen_by_a["transactions"] == []
    # B's marketing consent is B's: A needs one of its own.
    await api.refused(_read(api, a, member_id, "marketing"), 403, "consent_required")
    seen_by_b = await api.accepted(_read(api, b, member_id, "customer_service"), 200)
    assert [t["points"] for t in seen_by_b["transactions"]] == [40]


async def test_the_disclosure_log_for_auditors_as_json_csv_and_xlsx(api: SignedApi) -> None:
    partner = await api.partner()
    member_id = await _enrol(api, partner)
    await api.accepted(_read(api, partner, member_id, "customer_service"), 200)
    auditor = await _bearer(api.database, Role.AUDITOR)
    window = {"from": (utc_now() - timedelta(days=1)).isoformat(), "to": "2100-01-01T00:00:00Z"}
    as_json = await api.client.get("/v1/audit/disclosures", params=window, headers=auditor)
    assert as_json.status_code == 200
    mine = [row for row in as_json.json() if row["member_id"] == member_id]
    assert [(r["partner_id"], r["purpose"]) for r in mine] == [
        (partner.partner_id, "customer_service")
    ]
    as_csv = await api.client.get(
        "/v1/audit/disclosures", params=window, headers={**auditor, "Accept": "text/csv"}
    )
    rows = [r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["member_id"] == member_id]
    assert rows[0]["fields"] == " ".join(mine[0]["fields"].split())
    as_xlsx = await api.client.get(
        "/v1/audit/disclosures", params=window, headers={**auditor, "Accept": XLSX}
    )
    assert as_xlsx.headers["content-type"].startswith(XLSX)
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    assert sheet.freeze_panes == "A2"
    frame = pd.read_excel(io.BytesIO(as_xlsx.content), dtype=str)
    assert list(frame.loc[frame["member_id"] == member_id, "purpose"]) == ["customer_service"]


async def test_auditors_cannot_write(api: SignedApi) -> None:
    auditor = await _bearer(api.database, Role.AUDITOR)
    partner = await api.partner()
    member_id = await _enrol(api, partner)
    calls = [
        api.client.put("/v1/admin/contracts", json={"files": []}, headers=auditor),
        api.client.delete(f"/v1/admin/members/{member_id}/personal-data", headers=auditor),
        api.client.post(
            "/v1/admin/partners", json={"partner_id": "x", "legal_name": "X"}, headers=auditor
        ),
    ]
    for call in calls:
        assert_problem(await call, 403, "forbidden")
    still = await api.accepted(_read(api, partner, member_id, "customer_service"), 200)
    assert still["given_name"] == PERSONAL["given_name"]


async def test_an_operator_loads_contracts_and_erases_a_member(api: SignedApi) -> None:
    operator = await _bearer(api.database, Role.OPERATOR)
    partner_id = unique("upload")
    bad = contract_toml(partner_id, issue_rate="-0.5")
    refused = await api.client.put(
        "/v1/admin/contracts",
        json={"files": [{"name": "bad.toml", "toml": bad}]},
        headers=operator,
    )
    body = assert_problem(refused, 400, "invalid_request")
    assert "bad.toml" in body["detail"]
    assert "settlement.issue_rate" in body["detail"]
    good = {"name": "good.toml", "toml": contract_toml(partner_id)}
    loaded = await api.client.put("/v1/admin/contracts", json={"files": [good]}, headers=operator)
    assert loaded.json() == {
        "stored": [f"{partner_id} v1"],
        "unchanged": [],
        "partners_added": [partner_id],
    }
    partner = await api.partner()
    member_id = await _enrol(api, partner)
    erased = await api.client.delete(
        f"/v1/admin/members/{member_id}/personal-data", headers=operator
    )
    assert erased.json()["erased"] is True
    await api.refused(_read(api, partner, member_id, "customer_service"), 422, "member_erased")
    report = await api.client.get(f"/v1/admin/members/{member_id}/access-report", headers=operator)
    assert report.json()["personal_fields_held"] == []
    assert report.json()["erased_at"] is not None


async def test_reads_need_the_purpose_granted_by_the_contract(api: SignedApi) -> None:
    """A contract without ``settlement`` lets the partner post, not read its entries back."""
    partner_id = unique("nosettle")
    settlement = (
        '[purposes.settlement]\nlegal_basis = "legal_obligation"\nfields = ["transactions.own"]\n'
    )
    text = contract_toml(partner_id)
    assert settlement in text
    await load_contracts(api.database, [("v1.toml", text.replace(settlement, "").encode())])
    key = PartnerKey.generate(f"{partner_id}-1")
    await access.add_key(api.database, partner_id, key.public_base64, key_id=key.key_id)
    partner = Partner(partner_id, key)
    member = await api.member()
    entry = await api.issued(partner, member, 5)
    await api.refused(
        api.request("GET", "/v1/transactions", partner, params={"period": entry["period"]}),
        403,
        "purpose_not_permitted",
    )
    await api.refused(
        api.request("GET", f"/v1/transactions/{entry['entry_id']}", partner),
        403,
        "purpose_not_permitted",
    )
