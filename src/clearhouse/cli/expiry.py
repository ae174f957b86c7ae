"""``clearhouse expiry``: the expiry run by hand, and a member's points that will expire."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import echo_json, emit, json_option, run, services

if TYPE_CHECKING:
    from clearhouse.domain.expiry import ExpiringPoints
    from clearhouse.services.database import Database
    from clearhouse.services.expiry import ExpiryRun


@click.group()
def expiry() -> None:
    """Points expiry by lots: each issue expires by the policy in force when it was recorded."""


@expiry.command("run")
@json_option
def expiry_run(as_json: bool) -> None:
    """Expire every point past its lot's time that no open hold reserves: one expiry entry per
    member, to coalition:breakage (serve runs it every CLEARHOUSE_EXPIRY_INTERVAL_S seconds).
    Run again, it expires nothing twice; while another run is under way it refuses.

    Example: clearhouse expiry run
    """

    async def _run(database: Database) -> ExpiryRun:
        return await services(database).expiry.run()

    done = run(_run)
    if as_json:
        echo_json(
            {
                "holds_expired": done.holds_expired,
                "members": done.members,
                "entries": done.entries,
                "points": done.points,
                "reminders": done.reminders,
            }
        )
        return
    click.echo(
        f"{done.points:,} points expired in {done.entries:,} entries "
        f"({done.holds_expired:,} lapsed holds ended first); "
        f"{done.reminders:,} reminders of points expiring soon recorded"
    )


@expiry.command("show")
@click.argument("member_id")
@click.option(
    "--within-days",
    type=click.IntRange(1, 3660),
    default=365,
    show_default=True,
    help="Only points expiring this many days from now.",
)
@json_option
def expiry_show(member_id: str, within_days: int, as_json: bool) -> None:
    """A member's points that expire unless redeemed before, per expiry time.

    Example: clearhouse expiry show m-1001 --within-days 90
    """

    async def _show(database: Database) -> list[ExpiringPoints]:
        return await services(database).expiry.expiring(member_id, within_days)

    rows = [{"expires_at": e.expires_at.isoformat(), "points": e.points} for e in run(_show)]
    emit(rows, as_json, f"Points of {member_id} expiring within {within_days} days")


COMMANDS = (expiry,)
