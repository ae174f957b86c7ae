"""A settlement that the netting refuses is ``409 settlement_refused`` naming every reason, and
writes nothing: no settlement entry, no statement, not even the close."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from clearhouse.domain.netting import Cohort, PartnerNet, PointsRollForward
from clearhouse.services import clearing as clearing_module
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from tests.conftest import fresh_database
from tests.web.harness import assert_problem, signed_api
from tests.web.test_audit_periods import bearer
from tests.web.test_clearing_api import END, PERIOD, START

SECOND_REASON = "a line of the bakery is not quantity x rate"


async def members_hold_more_than_the_ledger_says(database: Database, member_id: str) -> None:
    """What only someone bypassing Clearhouse can do: the balance row no longer matches the
    postings, so the points roll-forward cannot close (a lot of 5 points comes with it, as the
    database requires of every balance)."""
    async with database.transaction() as connection:
        await connection.execute(
            "UPDATE member_balances SET balance_points = balance_points + 5 WHERE member_id = $1",
            member_id,
        )
        await connection.execute(
            "INSERT INTO lots (member_id, points, remaining, recorded_at, cohort_at)"
            " VALUES ($1, 5, 5, ledger_now(), ledger_now())",
            member_id,
        )


def with_a_second_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real checks, plus a reason that an intact netting cannot produce, so that the
    refusal has more than one reason to list."""
    real = clearing_module.check_settlement

    def check(
        nets: Sequence[PartnerNet],
        margin: Decimal,
        roll_forward: PointsRollForward,
        cohorts: Sequence[Cohort] | None = None,
    ) -> list[str]:
        return [*real(nets, margin, roll_forward, cohorts), SECOND_REASON]

    monkeypatch.setattr(clearing_module, "check_settlement", check)


async def test_a_settlement_the_netting_refuses_is_409_settlement_refused_with_every_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
        await members_hold_more_than_the_ledger_says(database, member)
        with_a_second_reason(monkeypatch)

        settle = api.client.build_request(
            "POST", f"/v1/admin/periods/{PERIOD}/settle", headers=operator
        )
        refused = await api.refused(settle, 409, "settlement_refused")
        assert refused["detail"] == (
            "the settlement does not add up: the points roll-forward closes at 500 but members "
            "hold 505 at the cut-off; the lots hold 500 points at the cut-off but members hold "
            f"505; {SECOND_REASON}"
        )
        assert_problem(
            await api.client.get(f"/v1/audit/periods/{PERIOD}", headers=auditor), 404, "not_found"
        )
        assert_problem(
            await api.client.get(f"/v1/audit/statements/{PERIOD}", headers=auditor),
            404,
            "not_found",
        )
