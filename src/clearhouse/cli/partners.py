"""``clearhouse partner``: partners of the coalition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import emit, json_option, run

if TYPE_CHECKING:
    from clearhouse.services.database import Database


@click.group()
def partner() -> None:
    """Partners of the coalition."""


@partner.command("add")
@click.argument("partner_id")
@click.option("--name", "legal_name", required=True, help="The partner's legal name.")
def partner_add(partner_id: str, legal_name: str) -> None:
    """Register a partner and open its accounts.

    Example: clearhouse partner add baeckerei-schmidt --name "Bäckerei Schmidt GmbH"
    """
    from clearhouse.services.coalition import add_partner

    async def _add(database: Database) -> None:
        await add_partner(database, partner_id, legal_name)

    run(_add)
    click.echo(f"partner {partner_id} added")


@partner.command("list")
@json_option
def partner_list(as_json: bool) -> None:
    """List partners with their number of active keys.

    Example: clearhouse partner list --json
    """
    from clearhouse.services import access

    rows = [
        {"partner_id": p, "legal_name": n, "created_at": c.isoformat(), "active_keys": k}
        for p, n, c, k in run(access.list_partners)
    ]
    emit(rows, as_json, "Partners")


COMMANDS = [partner]
