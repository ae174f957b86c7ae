"""Who sees a member: only partners the member has a relationship with; consents per partner.

A partner sees a member's personal fields only when the member was enrolled through it, has an
entry with it, or gave it a consent; any other member answers exactly as an unknown id does.
A partner writes consents for itself only; consents to all partners (``*``) are the operator's.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.web.harness import Partner, SignedApi, assert_problem

JANA = {"given_name": "Jana", "family_name": "Nowak", "email": "jana.nowak@example.org"}


def _read(api: SignedApi, partner: Partner, member_id: str, purpose: str) -> httpx.Request:
    return api.request("GET", f"/v1/members/{member_id}", partner, purpose=purpose)


def _consents(
    api: SignedApi, partner: Partner, member_id: str, *consents: dict[str, Any]
) -> httpx.Request:
    return api.request(
        "PUT",
        f"/v1/members/{member_id}/consents",
        partner,
        body={"consents": list(consents)},
        purpose="consent_management",
    )


def _as_unknown(problem: dict[str, Any], member_id: str, unknown: str) -> dict[str, Any]:
    """The problem with what differs between any two requests (their ids) taken out."""
    return {
        key: (value.replace(member_id, unknown) if isinstance(value, str) else value)
        for key, value in problem.items()
        if key != "instance"
    }


async def _operator_consents(
    api: SignedApi, operator: dict[str, str], member_id: str, *consents: dict[str, Any]
) -> httpx.Response:
    return await api.client.put(
        f"/v1/admin/members/{member_id}/consents",
        json={"consents": list(consents)},
        headers=operator,
    )


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["customer_service", "marketing"])
async def test_a_member_of_another_partner_answers_exactly_as_an_unknown_id(
    api: SignedApi, purpose: str
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA, marketing=True)
    unknown = f"m-{uuid.uuid4().hex[:20]}"
    theirs = await api.refused(_read(api, b, member_id, purpose), 404, "not_found", receipt=True)
    nobody = await api.refused(_read(api, b, unknown, purpose), 404, "not_found", receipt=True)
    assert _as_unknown(theirs, member_id, unknown) == _as_unknown(nobody, unknown, unknown)


async def test_an_entry_with_the_partner_makes_the_member_readable_for_it(
    api: SignedApi,
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA)
    await api.refused(_read(api, b, member_id, "customer_service"), 404, "not_found", receipt=True)
    await api.issued(b, member_id, 10)  # the card presented at B's till
    seen = await api.accepted(_read(api, b, member_id, "customer_service"), 200)
    assert seen["family_name"] == JANA["family_name"]
    assert [t["points"] for t in seen["transactions"]] == [10]


async def test_a_consent_given_to_the_partner_through_the_coalition_makes_it_related(
    api: SignedApi, operator: dict[str, str]
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA)
    given = {"partner_id": b.partner_id, "purpose": "marketing", "granted": True}
    response = await _operator_consents(api, operator, member_id, given)
    assert response.status_code == 200, response.text
    seen = await api.accepted(_read(api, b, member_id, "marketing"), 200)
    assert seen["given_name"] == JANA["given_name"]


async def test_a_consent_to_all_partners_does_not_by_itself_make_a_partner_related(
    api: SignedApi, operator: dict[str, str]
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA)
    every = {"partner_id": "*", "purpose": "marketing", "granted": True}
    assert (await _operator_consents(api, operator, member_id, every)).status_code == 200
    await api.refused(_read(api, b, member_id, "marketing"), 404, "not_found", receipt=True)
    await api.issued(b, member_id, 1)
    seen = await api.accepted(_read(api, b, member_id, "marketing"), 200)
    assert seen["email"] == JANA["email"]


async def test_issue_and_redeem_still_work_with_any_coalition_card(api: SignedApi) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA)
    issued = await api.issued(b, member_id, 30)
    assert issued["member_balance"] == 30
    redeemed = await api.accepted(api.points("redeem", b, member_id, 5))
    assert redeemed["member_balance"] == 25


# --- enrolling a known card --------------------------------------------------------------


async def test_enrolling_a_known_card_answers_as_a_first_enrolment_and_links_it(
    api: SignedApi,
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = f"card-{uuid.uuid4().hex[:12]}"
    fresh_id = f"card-{uuid.uuid4().hex[:12]}"
    await api.enrolled(a, member_id=member_id, personal=JANA)
    other = {"given_name": "Eve", "email": "eve@example.org"}
    known = await api.send(
        api.request(
            "POST",
            "/v1/members",
            b,
            body={"member_id": member_id, "personal": other},
            purpose="enrolment",
        )
    )
    first = await api.send(
        api.request(
            "POST",
            "/v1/members",
            b,
            body={"member_id": fresh_id, "personal": other},
            purpose="enrolment",
        )
    )
    assert (known.status_code, first.status_code) == (201, 201)
    assert known.json() == {"member_id": member_id}
    assert first.json() == {"member_id": fresh_id}
    assert {
        n for n in known.headers if n not in {"content-length", "signature", "x-request-id"}
    } == {n for n in first.headers if n not in {"content-length", "signature", "x-request-id"}}
    # B is now related through its enrolment; the member's data stay those given first.
    seen = await api.accepted(_read(api, b, member_id, "customer_service"), 200)
    assert (seen["given_name"], seen["family_name"]) == (JANA["given_name"], JANA["family_name"])


async def test_enrolling_a_known_card_records_consents_for_the_enrolling_partner_only(
    api: SignedApi,
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = f"card-{uuid.uuid4().hex[:12]}"
    await api.enrolled(a, member_id=member_id, personal=JANA, marketing=False)
    await api.enrolled(b, member_id=member_id, marketing=True)
    await api.accepted(_read(api, b, member_id, "marketing"), 200)
    await api.refused(_read(api, a, member_id, "marketing"), 403, "consent_required", receipt=True)


# --- writing consents ------------------------------------------------------------------------


async def test_a_partner_cannot_record_a_consent_to_all_partners(api: SignedApi) -> None:
    a = await api.partner("a")
    member_id = await api.enrolled(a, personal=JANA)
    every = {"purpose": "marketing", "granted": True, "all_partners": True}
    await api.refused(_consents(api, a, member_id, every), 403, "forbidden", receipt=True)
    enrolment = api.request(
        "POST", "/v1/members", a, body={"consents": [every]}, purpose="enrolment"
    )
    await api.refused(enrolment, 403, "forbidden", receipt=True)


async def test_a_partner_cannot_write_consents_for_a_member_it_has_no_relationship_with(
    api: SignedApi,
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA)
    grant = {"purpose": "marketing", "granted": True}
    await api.refused(_consents(api, b, member_id, grant), 404, "not_found", receipt=True)
    await api.refused(_read(api, b, member_id, "marketing"), 404, "not_found", receipt=True)


async def test_another_partner_cannot_undo_a_withdrawal_at_the_first(api: SignedApi) -> None:
    """The attack: B, related by an entry, tries to consent on the member's behalf to all."""
    a, b = await api.partner("a"), await api.partner("b")
    member_id = await api.enrolled(a, personal=JANA, marketing=True)
    withdraw = {"purpose": "marketing", "granted": False}
    await api.accepted(_consents(api, a, member_id, withdraw), 200)
    await api.issued(b, member_id, 1)
    every = {"purpose": "marketing", "granted": True, "all_partners": True}
    await api.refused(_consents(api, b, member_id, every), 403, "forbidden", receipt=True)
    await api.accepted(_consents(api, b, member_id, {"purpose": "marketing", "granted": True}), 200)
    await api.refused(_read(api, a, member_id, "marketing"), 403, "consent_required", receipt=True)


async def test_the_consent_in_force_is_the_latest_naming_the_partner_or_all(
    api: SignedApi, operator: dict[str, str]
) -> None:
    """docs/data-protection.md's example, step by step."""
    a = await api.partner("a")
    member_id = await api.enrolled(a, personal=JANA, marketing=True)
    await api.accepted(_read(api, a, member_id, "marketing"), 200)  # 1. given to A
    every_no = {"partner_id": "*", "purpose": "marketing", "granted": False}
    assert (await _operator_consents(api, operator, member_id, every_no)).status_code == 200
    await api.refused(_read(api, a, member_id, "marketing"), 403, "consent_required", receipt=True)
    await api.accepted(_consents(api, a, member_id, {"purpose": "marketing", "granted": True}), 200)
    await api.accepted(_read(api, a, member_id, "marketing"), 200)  # 3. given to A again
    every_yes = {"partner_id": "*", "purpose": "marketing", "granted": True}
    assert (await _operator_consents(api, operator, member_id, every_yes)).status_code == 200
    a_no = {"purpose": "marketing", "granted": False}
    await api.accepted(_consents(api, a, member_id, a_no), 200)
    await api.refused(_read(api, a, member_id, "marketing"), 403, "consent_required", receipt=True)


async def test_the_operator_consent_api_refuses_unknown_members_and_partners(
    api: SignedApi, operator: dict[str, str]
) -> None:
    a = await api.partner("a")
    member_id = await api.enrolled(a, personal=JANA)
    nobody = {"partner_id": "no-such-partner", "purpose": "marketing", "granted": True}
    assert_problem(await _operator_consents(api, operator, member_id, nobody), 404, "not_found")
    every = {"partner_id": "*", "purpose": "marketing", "granted": True}
    assert_problem(await _operator_consents(api, operator, "m-nobody", every), 404, "not_found")
    history = await _operator_consents(api, operator, member_id, every)
    assert [c["partner_id"] for c in history.json()["consents"]] == ["*"]


async def test_the_access_report_names_the_partners_a_card_was_linked_to(
    api: SignedApi, operator: dict[str, str]
) -> None:
    a, b = await api.partner("a"), await api.partner("b")
    member_id = f"card-{uuid.uuid4().hex[:12]}"
    await api.enrolled(a, member_id=member_id, personal=JANA)
    await api.enrolled(b, member_id=member_id)
    await api.enrolled(b, member_id=member_id)  # a second link by B is the same link
    report = await api.client.get(f"/v1/admin/members/{member_id}/access-report", headers=operator)
    assert report.status_code == 200, report.text
    assert report.json()["enrolled_by"] == a.partner_id
    assert [link["partner_id"] for link in report.json()["linked_by"]] == [b.partner_id]
