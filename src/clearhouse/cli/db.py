"""``clearhouse db``: the database schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import run

if TYPE_CHECKING:
    from clearhouse.services.database import Database


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied.

    Example: clearhouse db upgrade
    """
    from clearhouse.storage.migrate import current_revision, upgrade

    async def _upgrade(database: Database) -> str | None:
        await upgrade(database.engine)
        return await current_revision(database.engine)

    click.echo(f"database at revision {run(_upgrade)}")


COMMANDS = [db]
