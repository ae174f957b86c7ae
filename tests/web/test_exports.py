"""The auditors' exports as a spreadsheet opens them: text from partners never becomes a formula.

A member id is chosen by the enrolling partner, so the disclosure log carries text from outside.
These tests enrol members whose ids a spreadsheet would take for formulas (the ids the ledger's
identifier rule allows: printable ASCII without spaces or ``:``) and read the exports back.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import openpyxl
import pytest

from clearhouse.services import access
from clearhouse.services.access import Role
from tests.web.harness import SignedApi, utc_now

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERSONAL = {"given_name": "Jana", "family_name": "Nowak"}
FORMULA_IDS = [
    '=HYPERLINK("evil.example","y{n}")',
    "=1+{n}",
    "@SUM(A{n})",
    "-2+{n}",
    "+{n}",
]
"""Member ids that start like a formula; ``{n}`` keeps each one unique in the run's database."""


async def _disclosed(api: SignedApi, template: str) -> str:
    """A member enrolled under an id made from ``template`` whose data a partner then read."""
    member_id = template.format(n=uuid.uuid4().int % 10**9)
    partner = await api.partner()
    body = {"member_id": member_id, "personal": PERSONAL, "consents": []}
    await api.accepted(api.request("POST", "/v1/members", partner, body=body, purpose="enrolment"))
    read = api.request("GET", f"/v1/members/{member_id}", partner, purpose="customer_service")
    await api.accepted(read, 200)
    return member_id


async def _export(api: SignedApi, accept: str) -> bytes:
    token = await access.create_token(api.database, Role.AUDITOR, utc_now() + timedelta(hours=1))
    window = {"from": (utc_now() - timedelta(days=1)).isoformat(), "to": "2100-01-01T00:00:00Z"}
    response = await api.client.get(
        "/v1/audit/disclosures",
        params=window,
        headers={"Authorization": f"Bearer {token.secret}", "Accept": accept},
    )
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize("template", FORMULA_IDS)
async def test_a_formula_like_member_id_is_quoted_in_the_csv_disclosure_export(
    api: SignedApi, template: str
) -> None:
    member_id = await _disclosed(api, template)

    text = (await _export(api, "text/csv")).decode()
    member_ids = [row["member_id"] for row in csv.DictReader(io.StringIO(text))]
    assert f"'{member_id}" in member_ids
    assert member_id not in member_ids


@pytest.mark.parametrize("template", FORMULA_IDS)
async def test_a_formula_like_member_id_is_a_quote_prefixed_text_cell_in_the_xlsx_export(
    api: SignedApi, template: str
) -> None:
    member_id = await _disclosed(api, template)

    sheet = openpyxl.load_workbook(io.BytesIO(await _export(api, XLSX))).active
    assert sheet is not None
    header = [cell.value for cell in sheet[1]]
    column = header.index("member_id")
    (cell,) = [row[column] for row in sheet.iter_rows(min_row=2) if row[column].value == member_id]
    assert cell.data_type == "s", f"{cell.coordinate} holds {cell.value!r} as {cell.data_type}"
    assert cell.quotePrefix, f"{cell.coordinate} can become a formula when edited"


async def test_the_csv_disclosure_export_keeps_plain_values_and_numbers_as_they_are(
    api: SignedApi,
) -> None:
    member_id = await _disclosed(api, "m-plain-{n}")

    text = (await _export(api, "text/csv")).decode()
    (row,) = [r for r in csv.DictReader(io.StringIO(text)) if r["member_id"] == member_id]
    assert row["purpose"] == "customer_service"
    assert row["contract_version"] == "1"
    assert not row["disclosed_at"].startswith("'")


async def test_a_member_id_holding_a_semicolon_is_one_quoted_csv_field(api: SignedApi) -> None:
    # Where ";" separates (a German Excel), an unquoted x;=1+2 would put =1+2 in a cell of its own.
    member_id = await _disclosed(api, "x;=1+{n}")

    text = (await _export(api, "text/csv")).decode()
    assert f',"{member_id}",' in text
