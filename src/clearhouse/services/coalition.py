"""The coalition's parties: partners (with their accounts) and members (with a zero balance)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.ledger import (
    member_account,
    partner_accounts,
    validate_identifier,
    validate_text,
)
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store

LEGAL_NAME_LENGTH_MAX = 200


async def add_partner(database: Database, partner_id: str, legal_name: str) -> None:
    """Register a partner and open its issued, redeemed and settlement accounts."""
    validate_identifier(partner_id, name="partner_id")
    validate_text(legal_name, name="legal_name", length_max=LEGAL_NAME_LENGTH_MAX)
    try:
        async with database.transaction() as connection:
            await store.insert_partner(
                connection, partner_id, legal_name, partner_accounts(partner_id)
            )
    except asyncpg.UniqueViolationError as exc:
        raise InvalidRequest(f"partner {partner_id} exists already") from exc


async def enrol_members(database: Database, member_ids: Sequence[str]) -> None:
    """Open members with a zero balance, all or none, in one set-based statement."""
    for member_id in member_ids:
        validate_identifier(member_id, name="member_id")
    if len(set(member_ids)) != len(member_ids):
        raise InvalidRequest("member ids repeat")
    try:
        async with database.transaction() as connection:
            await store.insert_members(
                connection, member_ids, [member_account(m) for m in member_ids]
            )
    except asyncpg.UniqueViolationError as exc:
        raise InvalidRequest("a member with one of these ids exists already") from exc
