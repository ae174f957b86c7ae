"""``clearhouse token``: operator and auditor bearer tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import duration, echo_json, emit, iso, json_option, run

if TYPE_CHECKING:
    from clearhouse.services.access import IssuedToken
    from clearhouse.services.database import Database

ROLES = ("operator", "auditor")
"""The values of ``services.access.Role``, written out so that ``--help`` loads no service
(a test keeps the two in step)."""


@click.group()
def token() -> None:
    """Operator and auditor bearer tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 90m, 12h, 30d.")
@click.option("--label", default="", help="Whose token this is.")
@json_option
def token_create(role: str, expires: str, label: str, as_json: bool) -> None:
    """Create a token; the secret is shown once and stored only as a hash.

    Example: clearhouse token create --role auditor --expires 30d --label "Audit firm"
    """
    from clearhouse.services import access

    expires_at = datetime.now(UTC) + duration(expires)

    async def _create(database: Database) -> IssuedToken:
        return await access.create_token(database, access.Role(role), expires_at, label)

    issued = run(_create)
    if as_json:
        echo_json(
            {
                "token_id": issued.token_id,
                "role": issued.role.value,
                "expires_at": issued.expires_at.isoformat(),
                "secret": issued.secret,
            }
        )
        return
    click.echo(f"token {issued.token_id} ({issued.role}) expires {issued.expires_at.isoformat()}")
    click.echo(issued.secret)


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token at once.

    Example: clearhouse token revoke tok_0123456789abcdef
    """
    from clearhouse.services import access

    async def _revoke(database: Database) -> None:
        await access.revoke_token(database, token_id)

    run(_revoke)
    click.echo(f"token {token_id} revoked")


@token.command("list")
@json_option
def token_list(as_json: bool) -> None:
    """List tokens (never their secrets).

    Example: clearhouse token list
    """
    from clearhouse.services import access

    rows = [
        {
            "token_id": t.token_id,
            "role": t.role,
            "label": t.label,
            "expires_at": t.expires_at.isoformat(),
            "revoked_at": iso(t.revoked_at),
        }
        for t in run(access.list_tokens)
    ]
    emit(rows, as_json, "Tokens")


COMMANDS = [token]
