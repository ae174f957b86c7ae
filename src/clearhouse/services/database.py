"""The database as the services see it: the engine, and connections that fail as domain errors.

``driver_connection`` hands out the asyncpg connection under a pooled SQLAlchemy connection,
for the ledger's one-call hot path; ``transaction`` opens one on it for work of several
statements. A database that cannot be reached becomes ``Unavailable`` (503, nothing written).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from clearhouse.domain.errors import Unavailable

_UNREACHABLE = (
    OSError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


class Database:
    """The engine of one coalition, shared by all services of a process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """An asyncpg connection in autocommit: each statement commits on its own."""
        try:
            async with self.engine.connect() as connection:
                raw = await connection.get_raw_connection()
                yield raw.driver_connection
        except _UNREACHABLE as exc:
            raise Unavailable("the database cannot be reached; nothing was written") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable("the database connection was lost; nothing was written") from exc
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """An asyncpg connection inside one transaction, committed when the block ends."""
        async with self.driver_connection() as connection, connection.transaction():
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()
