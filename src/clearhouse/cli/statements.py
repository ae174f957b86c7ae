"""``clearhouse statement``: reading the signed statements of settled periods."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import run

if TYPE_CHECKING:
    from clearhouse.services.database import Database
    from clearhouse.statements.documents import SignedStatement


@click.group()
def statement() -> None:
    """Signed statements of settled periods."""


@statement.command("show")
@click.argument("month")
@click.argument("party")
def statement_show(month: str, party: str) -> None:
    """The signed statement of PARTY (a partner id, or coalition) for MONTH, as JSON.

    The same document as `settle --out` writes and GET /v1/statements serves, with its
    sha256, signature and key id.
    Example: clearhouse statement show 2026-11 baeckerei-schmidt > statement.json
    """
    from clearhouse.services.clearing import signed_statement

    async def _show(database: Database) -> SignedStatement:
        return await signed_statement(database, month, party)

    click.echo(json.dumps(run(_show).with_integrity(), indent=2, sort_keys=True))


COMMANDS = [statement]
