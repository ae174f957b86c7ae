"""``clearhouse holds``: the operator's view of holds, voiding one, and the sweeper by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from clearhouse.cli.common import echo_json, emit, iso, json_option, run, services

if TYPE_CHECKING:
    from clearhouse.domain.holds import Hold
    from clearhouse.services.database import Database
    from clearhouse.services.holds import HoldAnswer

STATUSES = ("open", "captured", "voided", "expired")


def hold_fields(hold: Hold) -> dict[str, Any]:
    """A hold as the CLI shows it, the same in a table and in JSON."""
    return {
        "hold_id": str(hold.hold_id),
        "status": hold.status.value,
        "partner_id": hold.partner_id,
        "member_id": hold.member_id,
        "points": hold.points,
        "captured_points": hold.captured_points,
        "created_at": hold.created_at.isoformat(),
        "expires_at": hold.expires_at.isoformat(),
        "closed_at": iso(hold.closed_at),
        "reference": hold.reference,
        "capture_entry_id": None if hold.capture_entry_id is None else str(hold.capture_entry_id),
    }


def _hold_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a hold id (a UUID)") from exc


@click.group()
def holds() -> None:
    """Holds: points reserved for a partner until captured, voided or expired."""


@holds.command("list")
@click.option("--partner", "partner_id", default=None, help="Only this partner's holds.")
@click.option(
    "--status", type=click.Choice(STATUSES), default=None, help="Only holds in this state."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="At most this many, the oldest first.",
)
@json_option
def holds_list(partner_id: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Holds in the order they were made (an open hold past its time lists as expired).

    Example: clearhouse holds list --status open --partner tankstelle-nord
    """
    from clearhouse.domain.holds import HoldStatus

    async def _list(database: Database) -> list[Hold]:
        return await services(database).holds.page(
            partner_id,
            status=None if status is None else HoldStatus(status),
            after=None,
            limit=limit,
        )

    found = run(_list)
    shown = {"hold_id", "status", "partner_id", "member_id", "points", "expires_at"}
    rows = [{k: v for k, v in hold_fields(h).items() if as_json or k in shown} for h in found]
    emit(rows, as_json, "Holds")
    if len(found) == limit:
        click.echo(f"the first {limit} holds; --limit shows more", err=True)


@holds.command("show")
@click.argument("hold_id")
@json_option
def holds_show(hold_id: str, as_json: bool) -> None:
    """One hold as recorded.

    Example: clearhouse holds show 0b6f2a9e-3c1d-4f5e-9a7b-2c8d1e0f4a6b
    """
    chosen = _hold_id(hold_id)

    async def _show(database: Database) -> Hold:
        return await services(database).holds.hold(None, chosen)

    fields = hold_fields(run(_show))
    if as_json:
        echo_json(fields)
        return
    for name, value in fields.items():
        click.echo(f"{name:18} {'' if value is None else value}")


@holds.command("void")
@click.argument("hold_id")
@click.option("--reason", required=True, help="Why the operator voids it (kept with the hold).")
@json_option
def holds_void(hold_id: str, reason: str, as_json: bool) -> None:
    """Void an open hold for its partner: its points are available again.

    Run again, it answers as the first time (its Idempotency-Key is operator-void:HOLD_ID).

    Example: clearhouse holds void 0b6f2a9e-3c1d-4f5e-9a7b-2c8d1e0f4a6b --reason "pump reset"
    """
    chosen = _hold_id(hold_id)

    async def _void(database: Database) -> HoldAnswer:
        house = services(database)
        hold = await house.holds.hold(None, chosen)
        return await house.holds.void(
            hold.partner_id, chosen, reason, idempotency_key=f"operator-void:{chosen}"
        )

    answer = run(_void)
    if as_json:
        echo_json(hold_fields(answer.hold) | {"member_available": answer.member.available})
        return
    click.echo(
        f"hold {answer.hold.hold_id} {answer.hold.status.value}: "
        f"{answer.member.available:,} points available to {answer.hold.member_id}"
    )


@holds.command("expire")
@json_option
def holds_expire(as_json: bool) -> None:
    """End every hold whose time ran out and release its points (serve does it every
    CLEARHOUSE_HOLD_SWEEP_INTERVAL_S seconds).

    Example: clearhouse holds expire
    """

    async def _expire(database: Database) -> int:
        return await services(database).holds.expire_due()

    ended = run(_expire)
    if as_json:
        echo_json({"expired": ended})
        return
    click.echo(f"{ended} holds expired")


COMMANDS = (holds,)
