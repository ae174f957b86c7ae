"""``clearhouse clock``: the ledger clock."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import echo_json, json_option, run, settings

if TYPE_CHECKING:
    from clearhouse.services.database import Database


@click.group()
def clock() -> None:
    """The ledger clock (settable in sandbox mode only)."""


@clock.command("show")
@json_option
def clock_show(as_json: bool) -> None:
    """Print the ledger clock.

    Example: clearhouse clock show
    """
    from clearhouse.services.clock import ledger_time

    now = run(ledger_time).isoformat()
    if as_json:
        echo_json({"ledger_time": now})
    else:
        click.echo(now)


@clock.command("set")
@click.argument("moment")
def clock_set(moment: str) -> None:
    """Set the ledger clock in sandbox mode; it keeps ticking from there.

    Example: CLEARHOUSE_SANDBOX=1 clearhouse clock set 2026-12-01T00:00:05Z
    """
    from clearhouse.services.clock import set_ledger_time

    try:
        at = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise click.BadParameter(f"{moment!r} is not an RFC 3339 time") from exc
    sandbox = settings().sandbox

    async def _set(database: Database) -> datetime:
        return await set_ledger_time(database, sandbox=sandbox, at=at)

    click.echo(run(_set).isoformat())


COMMANDS = [clock]
