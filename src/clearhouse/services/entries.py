"""Reading the ledger's entries: one entry or a period's for operators and auditors, and a
partner's own entries (another partner's entry is ``NotFound``, never a hint that it exists)."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID
from zoneinfo import ZoneInfo

from clearhouse.domain.errors import InvalidRequest, NotFound
from clearhouse.domain.periods import period_bounds
from clearhouse.domain.records import Entry
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store

ENTRIES_LISTED_MAX: Final = 100_000
"""The most entries one listing returns: a month of a large coalition is read in bulk by
``settle --out`` and ``audit verify``, not through a listing."""


async def entry(database: Database, entry_id: str) -> Entry:
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
) -> list[Entry]:
    """The first ``limit`` entries recorded in ``period`` (of one partner if given), in order."""
    if not 1 <= limit <= ENTRIES_LISTED_MAX:
        raise InvalidRequest(f"limit must lie between 1 and {ENTRIES_LISTED_MAX}, not {limit}")
    start, end = period_bounds(period, zone)
    async with database.driver_connection() as connection:
        return await store.fetch_entries(connection, start, end, partner_id, limit)


async def own_entry(database: Database, partner_id: str, entry_id: UUID) -> Entry:
    """The entry ``entry_id`` if ``partner_id`` recorded it."""
    async with database.driver_connection() as connection:
        found = await store.fetch_entry(connection, entry_id)
    if found is None or found.partner_id != partner_id:
        raise NotFound(f"no entry {entry_id}")
    return found


async def own_entries_page(
    database: Database,
    partner_id: str,
    start: datetime,
    end: datetime,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Entry]:
    """Up to ``limit`` of the partner's entries recorded in ``[start, end)`` after the keyset
    position ``after`` (recorded_at, entry_id), in order."""
    async with database.driver_connection() as connection:
        return await store.fetch_partner_entries(connection, partner_id, start, end, after, limit)
