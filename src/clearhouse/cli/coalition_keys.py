"""``clearhouse coalition-key``: the coalition's own signing keys and their history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clearhouse.cli.common import echo_json, emit, iso, json_option, run, settings

if TYPE_CHECKING:
    from clearhouse.crypto.ed25519 import CoalitionKey
    from clearhouse.domain.records import KeyPurpose
    from clearhouse.services.database import Database


@click.group("coalition-key")
def coalition_key() -> None:
    """The coalition's own keys: one signs receipts and statements, one webhooks."""


@coalition_key.command("rotate")
@click.option(
    "--purpose",
    type=click.Choice(["statements", "webhooks"]),
    default="statements",
    show_default=True,
    help="The key that signs receipts and statements, or the one that signs webhooks.",
)
@json_option
def coalition_key_rotate(purpose: KeyPurpose, as_json: bool) -> None:
    """Write a new key to CLEARHOUSE_SIGNING_KEY_FILE (or, for webhooks,
    CLEARHOUSE_WEBHOOK_KEY_FILE) and make it current; the old one of that purpose retires.

    Every key that ever signed stays published at GET /v1/keys, so what it signed verifies
    for ever. Restart `clearhouse serve` afterwards: a running server signs with the keys it
    started with.

    Example: clearhouse coalition-key rotate --purpose webhooks
    """
    from clearhouse.services import coalition_keys

    chosen = settings()
    key_file = chosen.webhook_key_file if purpose == "webhooks" else chosen.signing_key_file

    async def _rotate(database: Database) -> tuple[str, CoalitionKey]:
        return await coalition_keys.rotate(database, key_file, purpose)

    retired, current = run(_rotate, chosen)
    if as_json:
        echo_json({"current": current.key_id, "retired": retired or None})
        return
    click.echo(f"{current.key_id} is current" + (f"; {retired} retired" if retired else ""))


@coalition_key.command("list")
@json_option
def coalition_key_list(as_json: bool) -> None:
    """Every coalition key that ever signed, with the time it took over and retired.

    Example: clearhouse coalition-key list
    """
    from clearhouse.services import coalition_keys

    async def _list(database: Database) -> list[dict[str, Any]]:
        return [
            {
                "key_id": k.key_id,
                "purpose": k.purpose,
                "status": "current" if k.retired_at is None else "retired",
                "not_before": k.not_before.isoformat(),
                "retired_at": iso(k.retired_at),
            }
            for k in await coalition_keys.published(database)
        ]

    emit(run(_list), as_json, "Coalition keys")


COMMANDS = [coalition_key]
