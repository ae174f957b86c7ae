"""Build a coalition in a few lines: unique partners and members, balances by issuing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from clearhouse.services.coalition import add_partner, enrol_members
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger, PointsRequest

OCCURRED_AT = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def a_partner(database: Database, name: str = "partner") -> str:
    partner_id = unique(name)
    await add_partner(database, partner_id, f"{name.title()} GmbH")
    return partner_id


async def a_member(database: Database, *, balance: int = 0, partner_id: str | None = None) -> str:
    member_id = unique("m")
    await enrol_members(database, [member_id])
    if balance:
        issuer = partner_id or await a_partner(database, "issuer")
        await Ledger(database).issue(
            issuer,
            points_request(member_id, balance),
            idempotency_key=unique("seed"),
        )
    return member_id


def points_request(member_id: str, points: int, reference: str = "receipt 1") -> PointsRequest:
    return PointsRequest(
        member_id=member_id, points=points, occurred_at=OCCURRED_AT, reference=reference
    )
