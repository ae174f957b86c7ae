"""The ledger clock: the database's, which only a sandbox coalition's operator may move.

It moves business time only (``recorded_at``, periods, expiry); signature freshness, nonces and
tokens always use real time.
"""

from __future__ import annotations

from datetime import datetime

from clearhouse.domain.errors import ClockNotSettable
from clearhouse.domain.periods import utc_instant
from clearhouse.services.database import Database
from clearhouse.storage import ledger as store


async def ledger_time(database: Database) -> datetime:
    async with database.driver_connection() as connection:
        return await store.ledger_now(connection)


async def set_ledger_time(database: Database, *, sandbox: bool, at: datetime) -> datetime:
    """Set the ledger clock to ``at``; from there it keeps ticking. Sandbox mode only."""
    if not sandbox:
        raise ClockNotSettable("the ledger clock can be set only in sandbox mode")
    at = utc_instant(at, name="the clock time")
    async with database.driver_connection() as connection:
        return await store.set_ledger_clock(connection, at)
