"""Expiry in clearing: expired points move no money unless a contract sets a breakage share,
every statement shows them by issuing version at the issue rate, and the coalition statement
carries the cohorts of issue months as of the cut-off.

One month is played by hand in a database of its own (it moves the sandbox clock); every
expected figure below is worked out from the entries in the comments, not read from a run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy
from clearhouse.domain.netting import LineKind
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry
from clearhouse.services.holds import Holds
from clearhouse.services.posting import Ledger
from clearhouse.statements.documents import SignedStatement
from clearhouse.statements.model import CoalitionStatement, PartnerStatement
from tests.conftest import fresh_database
from tests.services.builders import ZONE, contract_toml, points_request, unique

ONE_MONTH = ExpiryPolicy(mode=ExpiryMode.FIXED, months=1, align="exact")
# 5 October 2026 12:00 in Berlin (CEST): the lots expire on 5 November 12:00 in Berlin (CET),
# 11:00 UTC, a few seconds later as the sandbox clock ticks.
ISSUED = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
REDEEMED = datetime(2026, 10, 20, 10, 0, tzinfo=UTC)
AFTER_OCTOBER = datetime(2026, 10, 31, 23, 0, 1, tzinfo=UTC)  # 1 November 00:00:01 in Berlin
EXPIRED = datetime(2026, 11, 5, 11, 1, tzinfo=UTC)
REVERSED = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
AFTER_NOVEMBER = datetime(2026, 11, 30, 23, 0, 1, tzinfo=UTC)  # 1 December 00:00:01 in Berlin


async def _contract(
    database: Database, name: str, issue_rate: str = "0.0100", breakage_share: str | None = None
) -> str:
    partner_id = unique(name)
    text = contract_toml(partner_id, issue_rate=issue_rate)
    if breakage_share is not None:
        text = text.replace(
            'fee_per_entry = "0"\n',
            f'fee_per_entry = "0"\nbreakage_share_rate = "{breakage_share}"\n',
        )
    await load_contracts(database, [(f"{partner_id}.v1.toml", text.encode())])
    return partner_id


async def test_expired_points_are_shown_by_issuer_and_paid_back_only_at_a_breakage_share() -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=ISSUED)
        ledger = Ledger(database, ContractBook(database), ZONE, ONE_MONTH)
        expiry = Expiry(database, Holds(database, ContractBook(database), ledger), ZONE)
        clearing = Clearing(
            database, zone=ZoneInfo(ZONE), key=CoalitionKey.of(Ed25519PrivateKey.generate())
        )
        bakery = await _contract(database, "bakery")  # issue rate 0.0100, no breakage share
        fuel = await _contract(database, "fuel", "0.0125", breakage_share="0.004")
        shop = await _contract(database, "shop")  # redeems only, redemption rate 0.0080
        anna, ben = unique("m"), unique("m")
        await enrol_members(database, [anna, ben])

        async def post(kind: str, partner: str, member: str, points: int) -> UUID:
            method = ledger.issue if kind == "issue" else ledger.redeem
            posted = await method(
                partner, points_request(member, points), idempotency_key=unique(kind)
            )
            return posted.entry.entry_id

        await post("issue", bakery, anna, 100)
        await post("issue", fuel, ben, 200)
        await post("issue", bakery, ben, 50)
        await set_ledger_time(database, sandbox=True, at=REDEEMED)
        annas_redeem = await post("redeem", shop, anna, 30)  # 30 of the bakery's 100
        await post("redeem", shop, ben, 60)  # 60 of fuel's 200, the earlier of Ben's lots

        await set_ledger_time(database, sandbox=True, at=AFTER_OCTOBER)
        october = await clearing.settle("2026-10")
        (cohort,) = _coalition(october.statements).breakage_cohorts
        assert (cohort.month, cohort.issued, cohort.redeemed, cohort.expired) == (
            "2026-10",
            350,
            90,
            0,
        )
        assert (cohort.outstanding, cohort.redeemed_by_age) == (260, (90,))

        # Anna's 70 of the bakery, Ben's 140 of fuel and 50 of the bakery expire.
        await set_ledger_time(database, sandbox=True, at=EXPIRED)
        assert (await expiry.run()).points == 260
        # The shop reverses Anna's redeem after its lot expired: 30 come back as a new lot.
        await set_ledger_time(database, sandbox=True, at=REVERSED)
        await ledger.reverse(
            shop, annas_redeem, points=None, reason="returned", idempotency_key=unique("rev")
        )

        await set_ledger_time(database, sandbox=True, at=AFTER_NOVEMBER)
        november = await clearing.settle("2026-11")
        by_party = {s.party: s.body() for s in november.statements}

        bakery_statement = by_party[bakery]
        assert isinstance(bakery_statement, PartnerStatement)
        assert bakery_statement.entries == 0
        assert bakery_statement.lines == ()
        ((version, points, rate, value),) = [
            (e.contract_version, e.points, e.issue_rate, e.value)
            for e in bakery_statement.expired_points
        ]
        assert (version, points, rate, value) == (1, 120, "0.010000", "1.20")
        assert bakery_statement.net == "0.00"
        assert bakery_statement.breakage_amount is None

        fuel_statement = by_party[fuel]
        assert isinstance(fuel_statement, PartnerStatement)
        (line,) = fuel_statement.lines
        # 140 points x 0.004 = 0.56, which the coalition returns to fuel.
        assert (line.kind, line.quantity, line.rate, line.amount) == (
            LineKind.BREAKAGE,
            140,
            "0.004000",
            "0.56",
        )
        assert (fuel_statement.breakage_amount, fuel_statement.net) == ("0.56", "0.56")
        assert fuel_statement.direction.value == "coalition_pays_partner"
        # 140 x 0.0125 = 1.75 at the issue rate, information only.
        assert [(e.points, e.value) for e in fuel_statement.expired_points] == [(140, "1.75")]

        shop_statement = by_party[shop]
        assert isinstance(shop_statement, PartnerStatement)
        assert shop_statement.expired_points == ()
        # The reversal of 30 redeemed points: -30 x 0.0080 = -0.24.
        assert shop_statement.net == "-0.24"

        coalition = _coalition(november.statements)
        assert coalition.partners_net_total == "0.32"
        assert coalition.coalition_margin == "-0.32"
        assert coalition.multilateral_check == "0.00"
        positions = {p.partner_id: p for p in coalition.partners}
        assert (positions[bakery].expired_points, positions[bakery].expired_value) == (120, "1.20")
        assert (positions[fuel].breakage_amount, positions[fuel].expired_value) == ("0.56", "1.75")
        assert positions[shop].expired_points == 0
        roll = coalition.points_roll_forward
        assert (roll.opening, roll.issued, roll.redeemed, roll.expired, roll.closing) == (
            260,
            0,
            -30,
            260,
            30,
        )
        (cohort,) = coalition.breakage_cohorts
        # Redeemed 90 in October (age 0), 30 of them given back in November (age 1); what
        # came back is the cohort's only outstanding lot.
        assert (cohort.issued, cohort.redeemed, cohort.expired, cohort.outstanding) == (
            350,
            60,
            260,
            30,
        )
        assert cohort.redeemed_by_age == (90, -30)
        assert cohort.outstanding == roll.member_balances_at_cut_off


def _coalition(statements: list[SignedStatement]) -> CoalitionStatement:
    (body,) = [s.body() for s in statements if s.party == "coalition"]
    assert isinstance(body, CoalitionStatement)
    return body
