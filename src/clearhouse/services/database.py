"""The database as the services see it: a pool of asyncpg connections that fail as domain errors.

Services talk to PostgreSQL through ``driver_connection`` (autocommit: each statement commits on
its own, as the ledger's one-call hot path wants) and ``transaction`` (several statements, one
commit). The SQLAlchemy engine of the same database is kept for the migrations. A database that
cannot be reached becomes ``Unavailable`` (503, nothing written).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from clearhouse.config import Settings
from clearhouse.domain.errors import Unavailable
from clearhouse.storage.engine import create_engine, resolve_database_url

SERVER_SETTINGS: Final = {
    "timezone": "UTC",
    "application_name": "clearhouse",
    "lock_timeout": "5s",
}

_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


async def no_reset(connection: asyncpg.Connection) -> None:
    """A pool's reset that sends nothing: for connections that never SET, LISTEN or take a
    session advisory lock (asyncpg's default reset is one more round trip per release)."""
    return None


def _dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Database:
    """One coalition's database, shared by all services of a process."""

    def __init__(self, engine: AsyncEngine, *, pool_size: int = 10) -> None:
        self.engine = engine
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @classmethod
    def for_url(cls, url: str, *, pool_size: int = 10) -> Database:
        """The database at ``url``: ``pool_size`` connections for the services."""
        return cls(create_engine(url, pool_size=1), pool_size=pool_size)

    @classmethod
    def for_settings(cls, settings: Settings, *, pool_size: int = 10) -> Database:
        """The configured database (the embedded PostgreSQL, started, unless a URL is set)."""
        return cls.for_url(resolve_database_url(settings), pool_size=pool_size)

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        _dsn(self.engine),
                        min_size=1,
                        max_size=self._pool_size,
                        server_settings=SERVER_SETTINGS,
                        # Services never SET, LISTEN, or take session advisory locks, so a
                        # connection needs no reset on its way back (no_reset).
                        reset=no_reset,
                    )
        return self._pool

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """An asyncpg connection in autocommit: each statement commits on its own."""
        try:
            pool = await self._connections()
            async with pool.acquire() as connection:
                yield connection
        except _UNREACHABLE as exc:
            raise Unavailable("the database cannot be reached; nothing was written") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        """An asyncpg connection inside one transaction, committed when the block ends."""
        async with self.driver_connection() as connection, connection.transaction():
            yield connection

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()
