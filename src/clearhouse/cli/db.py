"""``clearhouse db``: the database schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import run

if TYPE_CHECKING:
    pass


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied.

    Example: clearhouse db upgrade
    """
    from clearhouse.services.schema import upgrade

    click.echo(f"database at revision {run(upgrade)}")


COMMANDS = [db]
