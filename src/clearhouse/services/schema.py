"""The database schema: applying the Alembic migrations not yet applied."""

from __future__ import annotations

from clearhouse.services.database import Database
from clearhouse.storage import migrate


async def upgrade(database: Database) -> str | None:
    """Apply every migration not yet applied; returns the revision the database is now at."""
    await migrate.upgrade(database.engine)
    return await migrate.current_revision(database.engine)
