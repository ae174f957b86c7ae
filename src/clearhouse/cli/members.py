"""``clearhouse member``: members, for operators and sandboxes (partners enrol them through
the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clearhouse.cli.common import (
    echo_json,
    emit,
    json_option,
    require_master_key,
    run,
    services,
    settings,
)
from clearhouse.cli.entries import entry_fields

if TYPE_CHECKING:
    from clearhouse.services.database import Database
    from clearhouse.services.members import Members, MemberStanding
    from clearhouse.services.posting import Ledger, PostedEntry


def _members(database: Database) -> Members:
    chosen = settings()
    return services(database, chosen, master_key=require_master_key(chosen)).members


def _ledger(database: Database) -> Ledger:
    return services(database).ledger


def _posted(posted: PostedEntry, as_json: bool, said: str) -> None:
    if as_json:
        echo_json(entry_fields(posted.entry))
        return
    click.echo(
        f"{said}: entry {posted.entry.entry_id}, balance {posted.entry.member_balance_after:,}"
    )


@click.group()
def member() -> None:
    """Members (partners enrol them through the API; this is for operators and sandboxes)."""


@member.command("enrol")
@click.argument("member_ids", nargs=-1, required=True)
def member_enrol(member_ids: tuple[str, ...]) -> None:
    """Enrol members with a zero balance.

    Example: clearhouse member enrol m-1001 m-1002
    """
    from clearhouse.services.coalition import enrol_members

    async def _enrol(database: Database) -> None:
        await enrol_members(database, list(member_ids))

    run(_enrol)
    click.echo(f"{len(member_ids)} member(s) enrolled")


@member.command("show")
@click.argument("member_id")
@json_option
def member_show(member_id: str, as_json: bool) -> None:
    """A member's balance and consents (never personal data: see access-report).

    Example: clearhouse member show m-1001
    """
    from clearhouse.services.members import member_standing

    async def _show(database: Database) -> MemberStanding:
        return await member_standing(database, member_id)

    standing = run(_show)
    consents = [
        {"partner_id": p, "purpose": purpose, "granted": g, "recorded_at": at.isoformat()}
        for p, purpose, g, at in standing.consents
    ]
    shown: dict[str, Any] = {
        "member_id": standing.member_id,
        "balance_points": standing.balance_points,
        "enrolled_by": standing.enrolled_by,
        "enrolled_at": standing.enrolled_at.isoformat(),
        "erased_at": None if standing.erased_at is None else standing.erased_at.isoformat(),
    }
    if as_json:
        echo_json(shown | {"consents": consents})
        return
    for name, value in shown.items():
        click.echo(f"{name:<14}  {'' if value is None else value}")
    emit(consents, False, "Consents")


@member.command("erase")
@click.argument("member_id")
def member_erase(member_id: str) -> None:
    """Erase a member's personal data (GDPR Art. 17): the member's key is destroyed.

    Balances, entries and statements stay, under the pseudonymous member id.
    Example: clearhouse member erase m-1001
    """

    async def _erase(database: Database) -> bool:
        return await _members(database).erase(member_id)

    click.echo(f"member {member_id} erased" if run(_erase) else f"{member_id} was erased before")


@member.command("adjust")
@click.argument("member_id")
@click.option("--points", type=int, required=True, help="Positive: goodwill; negative: correction.")
@click.option("--reason", required=True, help="Why: goodwill, a correction, ...")
@json_option
def member_adjust(member_id: str, points: int, reason: str, as_json: bool) -> None:
    """Goodwill (positive POINTS) or a correction (negative) against coalition:adjustments.

    Mistakes are corrected this way, in the open period, never by editing entries.
    Example: clearhouse member adjust m-1001 --points=-250 --reason "double issue on 3 Nov"
    """

    async def _adjust(database: Database) -> PostedEntry:
        return await _ledger(database).adjust(member_id, points, reason)

    _posted(run(_adjust), as_json, f"adjusted {member_id} by {points:+,} points")


@member.command("expire")
@click.argument("member_id")
@click.argument("points", type=int)
@json_option
def member_expire(member_id: str, points: int, as_json: bool) -> None:
    """Move lapsed points of a member to coalition:breakage.

    Example: clearhouse member expire m-1001 120
    """

    async def _expire(database: Database) -> PostedEntry:
        return await _ledger(database).expire(member_id, points)

    _posted(run(_expire), as_json, f"expired {points:,} points of {member_id}")


@member.command("access-report")
@click.argument("member_id")
def member_access_report(member_id: str) -> None:
    """What is held of a member and to whom it was disclosed (GDPR Art. 15), as JSON.

    Example: clearhouse member access-report m-1001 > m-1001.json
    """

    async def _report(database: Database) -> dict[str, Any]:
        return await _members(database).access_report(member_id)

    echo_json(run(_report))


COMMANDS = [member]
