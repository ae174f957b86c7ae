"""A partner's events, paged: what its webhooks would have told it, for catching up."""

from __future__ import annotations

from clearhouse.domain.events import Event, EventPosition
from clearhouse.services.database import Database
from clearhouse.storage import events as store


async def events_page(
    database: Database, partner_id: str, after: EventPosition, limit: int
) -> list[Event]:
    """The partner's events after ``after``, oldest first; only events of transactions that
    have ended (a page never skips one that commits later)."""
    async with database.driver_connection() as connection:
        return await store.events_page(connection, partner_id, after, limit)


async def announce_contract_versions(database: Database) -> int:
    """``contract.version_effective`` for each version that took effect and was not announced
    yet; how many it announced."""
    async with database.driver_connection() as connection:
        return await store.announce_contract_versions(connection)
