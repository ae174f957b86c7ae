"""``clearhouse key``: partners' Ed25519 signing keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clearhouse.cli.common import echo_json, emit, iso, json_option, moment, run

if TYPE_CHECKING:
    from clearhouse.services.database import Database


@click.group()
def key() -> None:
    """Partners' Ed25519 signing keys."""


@key.command("generate")
@click.argument("out_prefix", type=click.Path(dir_okay=False, path_type=Path))
def key_generate(out_prefix: Path) -> None:
    """Make a key pair for a partner: OUT_PREFIX.pem (private, 0600) and OUT_PREFIX.pub.pem.

    Example: clearhouse key generate keys/baeckerei-schmidt
    """
    from clearhouse.crypto.ed25519 import load_or_create_private_key, public_bytes, public_pem

    private_path = out_prefix.with_suffix(".pem")
    if private_path.exists():
        raise click.ClickException(f"{private_path} exists already")
    private_key = load_or_create_private_key(private_path)
    public_path = out_prefix.with_suffix(".pub.pem")
    public_path.write_bytes(public_pem(public_bytes(private_key)))
    click.echo(f"private key {private_path}, public key {public_path}")


@key.command("add")
@click.argument("partner_id")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key-id", default=None, help="Name of the key (default: PARTNER-fingerprint).")
@click.option("--not-before", default=None, help="RFC 3339 time the key becomes valid.")
@click.option("--not-after", default=None, help="RFC 3339 time the key stops being valid.")
@json_option
def key_add(
    partner_id: str,
    key_file: Path,
    key_id: str | None,
    not_before: str | None,
    not_after: str | None,
    as_json: bool,
) -> None:
    """Add a partner's public key from a PEM file or a file of base64 raw bytes.

    Example: clearhouse key add baeckerei-schmidt keys/baeckerei-schmidt.pub.pem
    """
    from clearhouse.services import access

    public_key = key_file.read_bytes()
    starts, ends = moment(not_before, "--not-before"), moment(not_after, "--not-after")

    async def _add(database: Database) -> str:
        return await access.add_key(
            database, partner_id, public_key, key_id=key_id, not_before=starts, not_after=ends
        )

    added = run(_add)
    if as_json:
        echo_json({"key_id": added, "partner_id": partner_id})
    else:
        click.echo(f"key {added} added to {partner_id}")


@key.command("list")
@click.argument("partner_id")
@json_option
def key_list(partner_id: str, as_json: bool) -> None:
    """A partner's keys, current, expired and revoked, with whether each verifies now.

    Example: clearhouse key list baeckerei-schmidt
    """
    from clearhouse.crypto.ed25519 import key_fingerprint
    from clearhouse.services import access

    async def _list(database: Database) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {
                "key_id": k.key_id,
                "valid_now": access.key_is_valid(k, now),
                "fingerprint": key_fingerprint(k.public_key),
                "not_before": k.not_before.isoformat(),
                "not_after": iso(k.not_after),
                "revoked_at": iso(k.revoked_at),
            }
            for k in await access.partner_keys(database, partner_id)
        ]

    emit(run(_list), as_json, f"Keys of {partner_id}")


@key.command("revoke")
@click.argument("key_id")
def key_revoke(key_id: str) -> None:
    """Revoke a key at once: its next signature fails.

    Example: clearhouse key revoke baeckerei-schmidt-3f2a9c0d1e4b5a6f
    """
    from clearhouse.services import access

    async def _revoke(database: Database) -> None:
        await access.revoke_key(database, key_id)

    run(_revoke)
    click.echo(f"key {key_id} revoked")


COMMANDS = [key]
