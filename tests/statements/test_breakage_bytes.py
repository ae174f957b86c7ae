"""The signed bytes of statements with expired points, pinned like the others: a partner's
breakage line and expired points, and the coalition's cohorts of issue months, canonicalise to
exactly the documents written out by hand below, as the reference RFC 8785 package writes them.

The expected documents are typed in from the figures in the comments, not taken from the code
under test. Only fields that hold something are written (``omit_defaults``): the pinned
statements without expiry in ``test_statement_bytes`` keep their bytes.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import rfc8785

from clearhouse.domain.netting import (
    Cohort,
    ExpiredPoints,
    LineKind,
    PartnerNet,
    PointsRollForward,
    StatementLine,
)
from clearhouse.statements.documents import coalition_document, partner_document
from tests.statements.test_statement_bytes import (
    BERLIN,
    GENERATED_AT,
    GENERATED_TEXT,
    LEDGER_ROOT,
    ROOT_HEX,
    signed,
    version,
)

FUEL: Final = "tankstelle-nord"
FUEL_VERSION: Final = version(
    1,
    datetime(2026, 1, 1, tzinfo=BERLIN),
    issue_rate="0.0125",
    redemption_rate="0.0080",
    fee="0",
    limits=(5000, 20000),
    sha256="d" * 64,
)
# Breakage share 0.004: the version as a contract with settlement.breakage_share_rate loads.
FUEL_TERMS: Final = dataclasses.replace(
    FUEL_VERSION,
    partner_id=FUEL,
    legal_name="Tankstelle Nord AG",
    breakage_share_rate=Decimal("0.004"),
)
# Fuel issued 800 (x 0.0125 = 10.00) and 140 of its earlier points expired: returned at
# 140 x 0.004 = 0.56, shown at the issue rate as 140 x 0.0125 = 1.75. Net 0.56 - 10.00 = -9.44.
FUEL_NET: Final = PartnerNet(
    FUEL,
    (
        StatementLine(1, LineKind.BREAKAGE, 140, 0, 140, Decimal("0.004"), Decimal("0.56")),
        StatementLine(1, LineKind.ISSUE, 800, 0, 800, Decimal("0.0125"), Decimal("10.00")),
    ),
    issue_amount=Decimal("10.00"),
    redemption_amount=Decimal("0.00"),
    fees=Decimal("0.00"),
    net=Decimal("-9.44"),
    breakage_amount=Decimal("0.56"),
    expired=(ExpiredPoints(1, 140, Decimal("0.0125"), Decimal("1.75")),),
)

EXPECTED_FUEL: Final[dict[str, Any]] = {
    "statement_id": "2026-11/tankstelle-nord",
    "sequence": 2,
    "coalition": "Clearhouse coalition",
    "partner_id": "tankstelle-nord",
    "legal_name": "Tankstelle Nord AG",
    "period": "2026-11",
    "currency": "EUR",
    "generated_at": GENERATED_TEXT,
    "ledger_root": ROOT_HEX,
    "entries": 3,
    "lines": [
        {
            "contract_version": 1,
            "kind": "breakage",
            "points": 140,
            "reversed_points": 0,
            "quantity": 140,
            "rate": "0.004",
            "amount": "0.56",
        },
        {
            "contract_version": 1,
            "kind": "issue",
            "points": 800,
            "reversed_points": 0,
            "quantity": 800,
            "rate": "0.0125",
            "amount": "10.00",
        },
    ],
    "issue_amount": "10.00",
    "redemption_amount": "0.00",
    "fees": "0.00",
    "breakage_amount": "0.56",
    "net": "-9.44",
    "direction": "partner_pays_coalition",
    "who_pays": "Tankstelle Nord AG pays the coalition: 9.44 EUR",
    "opening_position": "0.00",
    "closing_position": "-9.44",
    "expired_points": [
        {"contract_version": 1, "issue_rate": "0.0125", "points": 140, "value": "1.75"}
    ],
    "contract_versions": [
        {
            "version": 1,
            "effective_from": "2025-12-31T23:00:00.000000Z",
            "sha256": "d" * 64,
            "issue_rate": "0.0125",
            "redemption_rate": "0.0080",
            "fee_per_entry": "0",
            "breakage_share_rate": "0.004",
            "max_points_per_transaction": 5000,
            "max_points_per_member_per_day": 20000,
        }
    ],
}

EXPECTED_COALITION: Final[dict[str, Any]] = {
    "statement_id": "2026-11/coalition",
    "sequence": 2,
    "coalition": "Clearhouse coalition",
    "partner_id": None,
    "period": "2026-11",
    "currency": "EUR",
    "generated_at": GENERATED_TEXT,
    "ledger_root": ROOT_HEX,
    "partners": [
        {
            "partner_id": "tankstelle-nord",
            "legal_name": "Tankstelle Nord AG",
            "issue_amount": "10.00",
            "redemption_amount": "0.00",
            "fees": "0.00",
            "breakage_amount": "0.56",
            "net": "-9.44",
            "direction": "partner_pays_coalition",
            "expired_points": 140,
            "expired_value": "1.75",
        }
    ],
    "partners_net_total": "-9.44",
    "coalition_margin": "9.44",
    "multilateral_check": "0.00",
    "open_holds_at_cut_off": {"holds": 0, "points": 0},
    "points_roll_forward": {
        "opening": 340,
        "issued": 800,
        "redeemed": 0,
        "expired": 140,
        "adjusted": 0,
        "closing": 1000,
        "member_balances_at_cut_off": 1000,
    },
    "breakage_cohorts": [
        {
            "month": "2026-10",
            "issued": 400,
            "adjusted": 0,
            "redeemed": 60,
            "expired": 140,
            "outstanding": 200,
            "redeemed_by_age": [60, 0],
        },
        {
            "month": "2026-11",
            "issued": 800,
            "adjusted": 0,
            "redeemed": 0,
            "expired": 0,
            "outstanding": 800,
            "redeemed_by_age": [0],
        },
    ],
}


def test_a_breakage_line_and_expired_points_sign_exactly_the_reference_bytes() -> None:
    statement = signed(
        partner_document(
            period="2026-11",
            sequence=2,
            coalition="Clearhouse coalition",
            net=FUEL_NET,
            legal_name="Tankstelle Nord AG",
            currency="EUR",
            versions=[FUEL_TERMS],
            entries=3,
            ledger_root=LEDGER_ROOT,
            generated_at=GENERATED_AT,
            opening_position=Decimal("0.00"),
        )
    )
    assert statement.document == rfc8785.dumps(EXPECTED_FUEL)


def test_the_cohorts_of_issue_months_sign_exactly_the_reference_bytes() -> None:
    # October issued 400, 60 redeemed that month, 140 expired in November: 200 outstanding;
    # with November's 800 the lots hold the 1,000 the members hold.
    statement = signed(
        coalition_document(
            period="2026-11",
            sequence=2,
            coalition="Clearhouse coalition",
            currency="EUR",
            nets=[FUEL_NET],
            legal_names={FUEL: "Tankstelle Nord AG"},
            margin=Decimal("9.44"),
            roll_forward=PointsRollForward(340, 800, 0, 140, 0, 1000),
            open_holds=(0, 0),
            ledger_root=LEDGER_ROOT,
            generated_at=GENERATED_AT,
            cohorts=[
                Cohort("2026-10", 400, 0, 60, 140, 200, (60, 0)),
                Cohort("2026-11", 800, 0, 0, 0, 800, (0,)),
            ],
        )
    )
    assert statement.document == rfc8785.dumps(EXPECTED_COALITION)
