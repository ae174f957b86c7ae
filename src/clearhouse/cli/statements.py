"""``clearhouse statement``: reading the signed statements of settled periods, and their schema."""

from __future__ import annotations

import json
from pathlib import Path
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

    served = json.loads(run(_show).served_json())
    click.echo(json.dumps(served, indent=2, sort_keys=True))


@statement.command("schema")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def statement_schema(out: Path | None) -> None:
    """Write the JSON Schema of statements as served (default: to standard output).

    The schema shipped as src/clearhouse/statements/schema.json is this output; write it
    again there after changing a statement's types.
    Example: clearhouse statement schema --out src/clearhouse/statements/schema.json
    """
    from clearhouse.statements.model import statement_schema_text

    text = statement_schema_text()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"schema written to {out}")


COMMANDS = [statement]
