"""``clearhouse demo``: a whole coalition month in sandbox mode, summarised."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from clearhouse.cli.common import run_coroutine
from clearhouse.cli.common import settings as read_settings
from clearhouse.config import Settings

_ARROWS = {
    "coalition_pays_partner": "coalition -> partner",
    "partner_pays_coalition": "partner -> coalition",
    "nothing_due": "nothing due",
}


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/demo/2026-11"),
    show_default=True,
    help="Where the month's statements (JSON and workbooks) go.",
)
@click.option(
    "--database",
    "database_name",
    default="clearhouse_demo",
    show_default=True,
    help="The database the demo makes afresh (and leaves for a look) on the server.",
)
def demo(out: Path, database_name: str) -> None:
    """Run a whole coalition month in sandbox mode, from a clean start, and summarise it.

    Three partners from contracts/, members, a month of signed traffic through the HTTP
    server, the month's end, closing, settlement, verification and the workbooks.
    Example: clearhouse demo
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from clearhouse.demo import DemoResult, run_demo
    from clearhouse.statements.model import CoalitionStatement

    settings = read_settings()
    from clearhouse.web.app import configure_logging

    # The demo's own delivery worker logs like serve's, on stderr; only what needs a look.
    configure_logging("DEBUG" if settings.log_level == "DEBUG" else "WARNING")
    console = Console()
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bars:

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        result: DemoResult = run_coroutine(
            run_demo(settings, out, progress, database_name=database_name)
        )
    assert result.settlement is not None
    table = Table(title=f"Clearing {result.settlement.period.period}")
    for column in ("partner", "issued (net)", "redeemed (net)", "net", "who pays whom"):
        table.add_column(
            column, justify="left" if column in ("partner", "who pays whom") else "right"
        )
    coalition: CoalitionStatement | None = None
    for statement in result.settlement.statements:
        body = statement.body()
        if isinstance(body, CoalitionStatement):
            coalition = body
            continue
        issued = sum(line.quantity for line in body.lines if line.kind == "issue")
        redeemed = sum(line.quantity for line in body.lines if line.kind == "redemption")
        table.add_row(
            body.legal_name,
            f"{issued:,}",
            f"{redeemed:,}",
            f"{body.net} {body.currency}",
            _ARROWS[body.direction],
        )
    assert coalition is not None
    console.print(table)
    console.print(
        f"multilateral check: partners' nets {coalition.partners_net_total} + coalition margin "
        f"{coalition.coalition_margin} = {coalition.multilateral_check}"
    )
    roll = coalition.points_roll_forward
    console.print(
        f"points: opening {roll.opening:,} + issued {roll.issued:,} - redeemed "
        f"{roll.redeemed:,} - expired {roll.expired:,} + adjusted {roll.adjusted:,} "
        f"= {roll.closing:,} = member balances at the cut-off "
        f"{roll.member_balances_at_cut_off:,}"
    )
    console.print("accepted: " + ", ".join(f"{k} {v}" for k, v in sorted(result.accepted.items())))
    cohorts = len(coalition.breakage_cohorts)
    console.print(
        f"expiry: {result.welcome_points:,} welcome points issued on 2 October, "
        f"{result.reminders} points.expiring reminders to partners that may see balances, "
        f"{result.expired_points:,} points expired on 2 November (October settled first); "
        f"{cohorts} cohorts of issue months on the coalition workbook's Breakage sheet"
    )
    held = coalition.open_holds_at_cut_off
    console.print(
        f"holds: {result.accepted['hold']} authorized, {result.accepted['capture']} captured "
        f"for at most what they held, {result.accepted['void']} voided, "
        f"{result.holds_left_open} left to expire ({result.holds_expired} swept at the month's "
        f"end); open at the cut-off: {held.holds} holding {held.points:,} points"
    )
    hooks = result.webhooks
    assert hooks is not None
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(hooks.by_type.items()))
    console.print(
        f"webhooks: {hooks.events} events delivered to the partners' loopback receivers, "
        f"{hooks.verified} of them v1a-verified, {hooks.undelivered} undelivered ({kinds})"
    )
    console.print("refused: " + ", ".join(f"{k} {v}" for k, v in sorted(result.refused.items())))
    console.print(
        f"erased: {result.erased_member}; ledger root {result.settlement.period.root.hex()}"
    )
    assert result.verification is not None
    assert result.key_file is not None
    console.print(f"audit verify: {result.verification.summary()}")
    for finding in result.verification.findings:
        console.print(f"  {finding}")
    console.print(f"statements and workbooks: {out}/")
    if not result.verification.verifies:
        raise click.ClickException("the month does not verify")
    prefix = _environment_prefix(settings)
    command = _this_command()
    console.print(
        "look at it: CLEARHOUSE_SANDBOX=1 "
        f"CLEARHOUSE_DATABASE_NAME={database_name} "
        f"CLEARHOUSE_SIGNING_KEY_FILE={_here(result.key_file)} "
        f"{prefix}{command} serve",
        soft_wrap=True,
    )
    console.print(
        "open the console: a token first, "
        f"CLEARHOUSE_SANDBOX=1 CLEARHOUSE_DATABASE_NAME={database_name} {prefix}{command} "
        "token create --role operator --label demo; then, with the server above running, "
        f"sign in with it at {settings.public_base_url}/console/sign-in",
        soft_wrap=True,
    )
    console.print("verify it yourself:")
    # The last line: a command that anyone may run as it stands.
    click.echo(f"{prefix}{command} audit verify --database {database_name}")


def _this_command() -> str:
    """How to call this ``clearhouse`` again."""
    path = Path(sys.argv[0]).resolve()
    if path.name != "clearhouse":  # python -m clearhouse.cli
        return f"{shlex.quote(sys.executable)} -m clearhouse.cli"
    return _here(path)


def _here(path: Path) -> str:
    """``path`` for a shell in this folder: relative when it lies below, quoted."""
    resolved = path.resolve()
    try:
        return shlex.quote(str(resolved.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(resolved))


def _environment_prefix(settings: Settings) -> str:
    """The settings another command needs to reach the database this one used."""
    prefix = ""
    if settings.database_url:
        prefix += f"DATABASE_URL={shlex.quote(settings.database_url)} "
    if settings.data_dir != Path(".clearhouse").resolve():
        prefix += f"CLEARHOUSE_DATA_DIR={_here(settings.data_dir)} "
    return prefix


COMMANDS = [demo]
