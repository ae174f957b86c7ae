"""``GET /v1/members/{member_id}/expiring``: a member's points expiring soon, for customer
service, to related partners only, each answer a disclosure."""

from __future__ import annotations

import uuid

import httpx

from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy
from clearhouse.services.contracts import ContractBook
from clearhouse.services.posting import Ledger
from tests.services.builders import ZONE, points_request
from tests.web.harness import Partner, SignedApi

ONE_MONTH = ExpiryPolicy(mode=ExpiryMode.FIXED, months=1, align="month_end")


def _expiring(
    api: SignedApi, partner: Partner, member_id: str, days: int | None = None
) -> httpx.Request:
    query = "" if days is None else f"?within_days={days}"
    return api.request(
        "GET", f"/v1/members/{member_id}/expiring{query}", partner, purpose="customer_service"
    )


async def _issue_expiring(api: SignedApi, partner: Partner, member_id: str, points: int) -> None:
    ledger = Ledger(api.database, ContractBook(api.database), ZONE, ONE_MONTH)
    await ledger.issue(
        partner.partner_id, points_request(member_id, points), idempotency_key=uuid.uuid4().hex
    )


async def test_a_related_partner_sees_the_points_expiring_and_the_read_is_a_disclosure(
    api: SignedApi,
) -> None:
    a = await api.partner("a")
    member_id = await api.enrolled(a)
    await api.issued(a, member_id, 70)  # under the app's policy: never expires
    await _issue_expiring(api, a, member_id, 40)
    await _issue_expiring(api, a, member_id, 2)
    soon = await api.accepted(_expiring(api, a, member_id, 70), 200)
    assert soon["member_id"] == member_id
    assert soon["within_days"] == 70
    # Both lots end with next month (59 to 62 days away): one expiry time, their points
    # together; the 70 points that never expire are not among them.
    assert [row["points"] for row in soon["expiring"]] == [42]
    assert soon["expiring"][0]["expires_at"].endswith("T23:00:00.000000Z") or soon["expiring"][0][
        "expires_at"
    ].endswith("T22:00:00.000000Z")
    within_a_month = await api.accepted(_expiring(api, a, member_id, 30), 200)
    assert within_a_month["expiring"] == []
    async with api.database.driver_connection() as connection:
        logged = await connection.fetch(
            "SELECT purpose, fields FROM disclosures WHERE member_id = $1 AND partner_id = $2",
            member_id,
            a.partner_id,
        )
    assert [(row["purpose"], list(row["fields"])) for row in logged] == [
        ("customer_service", ["member.balance"]),
        ("customer_service", ["member.balance"]),
    ]


async def test_an_unrelated_partner_gets_not_found_and_a_bad_window_is_refused(
    api: SignedApi,
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a)
    await api.refused(_expiring(api, b, member_id), 404, "not_found", receipt=True)
    await api.refused(_expiring(api, a, member_id, 0), 400, "invalid_request")
    await api.refused(_expiring(api, a, member_id, 100_000), 400, "invalid_request")
    wrong = api.request("GET", f"/v1/members/{member_id}/expiring", a, purpose="marketing")
    await api.refused(wrong, 403, "purpose_not_permitted", receipt=True)
