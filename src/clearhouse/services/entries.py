"""Reading the ledger's entries for operators and auditors: one entry, or a period's."""

from __future__ import annotations

from typing import Final
from uuid import UUID
from zoneinfo import ZoneInfo

from clearhouse.domain.errors import InvalidRequest, NotFound
from clearhouse.domain.periods import period_bounds
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store
from clearhouse.storage.ledger import EntryRow

ENTRIES_LISTED_MAX: Final = 100_000
"""The most entries one listing returns: a month of a large coalition is read in bulk by
``settle --out`` and ``audit verify``, not through a listing."""


async def entry(database: Database, entry_id: str) -> EntryRow:
    """The entry ``entry_id`` as recorded."""
    try:
        uuid = UUID(entry_id)
    except ValueError as exc:
        raise InvalidRequest(f"an entry id is a UUID, not {entry_id!r}") from exc
    async with database.driver_connection() as connection:
        found = await store.fetch_entry(connection, uuid)
    if found is None:
        raise NotFound(f"no entry {entry_id}")
    return found


async def period_entries(
    database: Database,
    period: str,
    zone: ZoneInfo,
    *,
    partner_id: str | None = None,
    limit: int = 1000,
) -> list[EntryRow]:
    """The first ``limit`` entries recorded in ``period`` (of one partner if given), in order."""
    if not 1 <= limit <= ENTRIES_LISTED_MAX:
        raise InvalidRequest(f"limit must lie between 1 and {ENTRIES_LISTED_MAX}, not {limit}")
    start, end = period_bounds(period, zone)
    async with database.driver_connection() as connection:
        return await store.fetch_entries(connection, start, end, partner_id, limit)
