"""``clearhouse period`` and ``clearhouse settle``: closing and settling monthly periods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clearhouse.cli.common import echo_json, emit, json_option, progress, run, services, settings
from clearhouse.config import Settings

if TYPE_CHECKING:
    from clearhouse.domain.records import SealedPeriod
    from clearhouse.services.clearing import Clearing, Settlement
    from clearhouse.services.database import Database


def clearing(database: Database, settings: Settings, *, make_key: bool = True) -> Clearing:
    """Clearing with the coalition's key; only settling may make the key on a first run."""
    from clearhouse.crypto.ed25519 import CoalitionKey, load_or_create_private_key

    if not make_key and not settings.signing_key_file.exists():
        raise click.ClickException(
            f"no coalition key at {settings.signing_key_file} (CLEARHOUSE_SIGNING_KEY_FILE)"
        )
    key = CoalitionKey.of(load_or_create_private_key(settings.signing_key_file))
    return services(database, settings, coalition_key=key).clearing


def _period_fields(p: SealedPeriod) -> dict[str, Any]:
    return {
        "period": p.period,
        "status": p.status,
        "entries": p.entry_count,
        "root": p.root.hex(),
        "closed_at": p.closed_at.isoformat(),
    }


@click.group()
def period() -> None:
    """Monthly periods: close them after their end, list them."""


@period.command("close")
@click.argument("month")
@json_option
def period_close(month: str, as_json: bool) -> None:
    """Seal a month once it has ended; prints its ledger root.

    Example: clearhouse period close 2026-11
    """
    chosen = settings()

    async def _close(database: Database) -> SealedPeriod:
        return await clearing(database, chosen).close(month)

    closed = run(_close)
    if as_json:
        echo_json(_period_fields(closed))
        return
    click.echo(f"{closed.period} closed: {closed.entry_count} entries, root {closed.root.hex()}")


@period.command("list")
@json_option
def period_list(as_json: bool) -> None:
    """Closed and settled periods with their roots.

    Example: clearhouse period list
    """
    chosen = settings()

    async def _list(database: Database) -> list[SealedPeriod]:
        return await clearing(database, chosen).periods()

    emit([_period_fields(p) for p in run(_list)], as_json, "Periods")


@click.command()
@click.argument("month")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each statement's JSON and workbook into this folder.",
)
@click.option("--json", "as_json", is_flag=True, help="The statements as JSON, for scripts.")
def settle(month: str, out: Path | None, as_json: bool) -> None:
    """Close (if need be) and settle a month: net, post, state and sign; idempotent.

    A month that does not add up is refused (settlement_refused, with every reason) and nothing
    is written.

    Example: clearhouse settle 2026-11 --out reports/2026-11
    """
    from clearhouse.statements.columns import DIRECTION_WORDS
    from clearhouse.statements.model import PartnerStatement

    chosen = settings()

    async def _settle(database: Database) -> Settlement:
        settling = clearing(database, chosen)
        with progress(as_json) as bars:
            step = bars.add_task(f"closing and settling {month}", total=None)
            settlement = await settling.settle(month)
            bars.update(step, total=1, completed=1)
            if out is None:
                return settlement
            out.mkdir(parents=True, exist_ok=True)
            writing = bars.add_task("writing workbooks", total=len(settlement.statements))
            for statement in settlement.statements:
                served = json.loads(statement.served_json())
                (out / f"{statement.party}.json").write_text(
                    json.dumps(served, indent=2, sort_keys=True) + "\n"
                )
                with (out / f"{statement.party}.xlsx").open("wb") as workbook:
                    await settling.write_workbook(month, statement.party, workbook)
                bars.advance(writing)
        return settlement

    settlement = run(_settle)
    if as_json:
        served = [json.loads(s.served_json()) for s in settlement.statements]
        click.echo(json.dumps(served, indent=2))
        return
    verb = "settled" if settlement.settled_now else "was settled before"
    click.echo(f"{month} {verb}; root {settlement.period.root.hex()}")
    rows = []
    for s in settlement.statements:
        body = s.body()
        if isinstance(body, PartnerStatement):
            net, direction = body.net, DIRECTION_WORDS[body.direction]
        else:
            net, direction = body.coalition_margin, "margin"
        rows.append(
            {"party": s.party, "net": net, "direction": direction, "sha256": s.sha256.hex()}
        )
    emit(rows, False, f"Statements {month}")


COMMANDS = [period, settle]
