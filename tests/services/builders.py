"""Build a coalition in a few lines: unique partners and members, balances by issuing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger, PointsRequest

OCCURRED_AT = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


ZONE = "Europe/Berlin"

CONTRACT = """
partner_id = "{partner_id}"
version = {version}
effective_from = "{effective_from}"
legal_name = "{legal_name}"

[settlement]
issue_rate = "{issue_rate}"
redemption_rate = "{redemption_rate}"
fee_per_entry = "0"

[limits]
max_points_per_transaction = {max_points_per_transaction}
max_points_per_member_per_day = {max_points_per_member_per_day}

[purposes.enrolment]
legal_basis = "contract"
fields = []

[purposes.accrual]
legal_basis = "contract"
fields = ["member.balance"]

[purposes.redemption]
legal_basis = "contract"
fields = ["member.balance"]

[purposes.settlement]
legal_basis = "legal_obligation"
fields = ["transactions.own"]

[purposes.consent_management]
legal_basis = "legal_obligation"
fields = []

[purposes.customer_service]
legal_basis = "legitimate_interest"
fields = ["member.given_name", "member.family_name", "member.balance", "transactions.own"]

[purposes.marketing]
legal_basis = "consent"
fields = ["member.email", "member.given_name"]
retention_days = 30
"""


def contract_toml(partner_id: str, **terms: object) -> str:
    """A contract file for ``partner_id``; ``terms`` override the defaults."""
    values: dict[str, object] = {
        "partner_id": partner_id,
        "version": 1,
        "effective_from": "2000-01-01T00:00:00Z",
        "legal_name": f"{partner_id} GmbH",
        "issue_rate": "0.0100",
        "redemption_rate": "0.0080",
        "max_points_per_transaction": 1_000_000,
        "max_points_per_member_per_day": 100_000_000,
    }
    values.update(terms)
    return CONTRACT.format(**values)


async def a_partner(database: Database, name: str = "partner", **terms: object) -> str:
    """A partner with contract version 1 in force (its terms overridable)."""
    partner_id = unique(name)
    text = contract_toml(partner_id, **terms)
    await load_contracts(database, [(f"{partner_id}.v1.toml", text.encode())])
    return partner_id


def a_ledger(database: Database) -> Ledger:
    return Ledger(database, ContractBook(database), ZONE)


async def a_member(database: Database, *, balance: int = 0, partner_id: str | None = None) -> str:
    member_id = unique("m")
    await enrol_members(database, [member_id])
    if balance:
        issuer = partner_id or await a_partner(database, "issuer")
        await a_ledger(database).issue(
            issuer,
            points_request(member_id, balance),
            idempotency_key=unique("seed"),
        )
    return member_id


def points_request(member_id: str, points: int, reference: str = "receipt 1") -> PointsRequest:
    return PointsRequest(
        member_id=member_id, points=points, occurred_at=OCCURRED_AT, reference=reference
    )
