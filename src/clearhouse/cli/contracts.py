"""``clearhouse contracts``: partners' contract versions (TOML files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import echo_json, json_option, run

if TYPE_CHECKING:
    from clearhouse.services.contracts import LoadReport
    from clearhouse.services.database import Database


@click.group()
def contracts() -> None:
    """Partners' contract versions (TOML files under contracts/)."""


@contracts.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
def contracts_load(directory: Path, as_json: bool) -> None:
    """Validate every *.toml file in DIRECTORY, then store the new versions (all or none).

    Example: clearhouse contracts load contracts/
    """
    from clearhouse.domain.contracts import ContractInvalid
    from clearhouse.services.contracts import load_contracts

    files = [(path.name, path.read_bytes()) for path in sorted(directory.glob("*.toml"))]
    if not files:
        raise click.ClickException(f"no *.toml files in {directory}")

    async def _load(database: Database) -> LoadReport:
        return await load_contracts(database, files)

    try:
        report = run(_load)
    except ContractInvalid as invalid:
        for problem in invalid.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{len(invalid.problems)} problem(s); nothing stored") from None
    if as_json:
        echo_json(
            [{"partner_id": p, "version": v, "stored": True} for p, v in report.stored]
            + [{"partner_id": p, "version": v, "stored": False} for p, v in report.unchanged]
        )
        return
    for partner_id, version in report.stored:
        click.echo(f"stored {partner_id} version {version}")
    for partner_id, version in report.unchanged:
        click.echo(f"unchanged {partner_id} version {version}")


@contracts.command("schema")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def contracts_schema(out: Path | None) -> None:
    """Write the JSON Schema of contract files (default: to standard output).

    Example: clearhouse contracts schema --out contracts/schema.json
    """
    from clearhouse.domain.contracts import contract_json_schema

    text = json.dumps(contract_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"schema written to {out}")


COMMANDS = [contracts]
