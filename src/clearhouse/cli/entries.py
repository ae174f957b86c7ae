"""``clearhouse entry``: reading the ledger's entries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clearhouse.cli.common import echo_json, emit, iso, json_option, run, settings

if TYPE_CHECKING:
    from clearhouse.domain.records import Entry
    from clearhouse.services.database import Database


def entry_fields(entry: Entry) -> dict[str, Any]:
    """An entry as the CLI shows it, the same in a table and in JSON."""
    return {
        "entry_id": str(entry.entry_id),
        "kind": entry.kind.value,
        "partner_id": entry.partner_id,
        "member_id": entry.member_id,
        "points": entry.points,
        "member_balance_after": entry.member_balance_after,
        "contract_version": entry.contract_version,
        "occurred_at": iso(entry.occurred_at),
        "recorded_at": entry.recorded_at.isoformat(),
        "reference": entry.reference,
        "reversal_of": None if entry.reversal_of is None else str(entry.reversal_of),
    }


@click.group()
def entry() -> None:
    """Entries of the ledger (read only: mistakes are corrected by new entries)."""


@entry.command("list")
@click.option("--period", "month", required=True, help="The month the entries were recorded in.")
@click.option("--partner", "partner_id", default=None, help="Only this partner's entries.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="At most this many, the earliest first.",
)
@json_option
def entry_list(month: str, partner_id: str | None, limit: int, as_json: bool) -> None:
    """Entries recorded in a month (YYYY-MM), in the order they were recorded.

    Example: clearhouse entry list --period 2026-11 --partner baeckerei-schmidt
    """
    from clearhouse.services.entries import period_entries

    zone = settings().timezone

    async def _list(database: Database) -> list[Entry]:
        return await period_entries(database, month, zone, partner_id=partner_id, limit=limit)

    found = run(_list)
    rows = [
        {
            key: value
            for key, value in entry_fields(e).items()
            if as_json or key in {"entry_id", "kind", "partner_id", "member_id", "points"}
        }
        | ({} if as_json else {"recorded_at": e.recorded_at.isoformat()})
        for e in found
    ]
    emit(rows, as_json, f"Entries {month}")
    if len(found) == limit:
        click.echo(f"the first {limit} entries; --limit shows more", err=True)


@entry.command("show")
@click.argument("entry_id")
@json_option
def entry_show(entry_id: str, as_json: bool) -> None:
    """One entry as recorded.

    Example: clearhouse entry show 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b
    """
    from clearhouse.services import entries

    async def _show(database: Database) -> Entry:
        return await entries.entry(database, entry_id)

    fields = entry_fields(run(_show))
    if as_json:
        echo_json(fields)
        return
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        click.echo(f"{name:<{width}}  {'' if value is None else value}")


COMMANDS = [entry]
