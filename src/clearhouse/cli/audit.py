"""``clearhouse audit``: checks an auditor can run."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click

from clearhouse.cli.common import echo_json, run, settings

if TYPE_CHECKING:
    from clearhouse.domain.verification import VerificationReport
    from clearhouse.services.database import Database


@click.group()
def audit() -> None:
    """Checks an auditor can run."""


@audit.command("verify")
@click.option("--period", "month", default=None, help="Only this period (YYYY-MM).")
@click.option(
    "--database",
    "database_name",
    default=None,
    help="Another database on the server (e.g. clearhouse_demo, what make demo made).",
)
@click.option("--json", "as_json", is_flag=True, help="The counts and every problem, as JSON.")
def audit_verify(month: str | None, database_name: str | None, as_json: bool) -> None:
    """Recompute ledger roots, check statement hashes and signatures and every entry's partner
    signature; say what was checked, and name what does not match.

    Exit status: 0 verifies; 1 a problem, a period not closed, or nothing to verify; 2 a
    malformed period.

    Example: clearhouse audit verify --period 2026-11
    """
    from clearhouse.domain.errors import InvalidRequest
    from clearhouse.domain.periods import period_bounds
    from clearhouse.services.audit import verify_ledger

    chosen = settings()
    if database_name is not None:
        chosen = dataclasses.replace(chosen, database_name=database_name)
    try:
        if month is not None:
            period_bounds(month, chosen.timezone)
    except InvalidRequest as exc:
        raise click.UsageError(f"invalid_request: {exc.detail}") from exc

    async def _verify(database: Database) -> VerificationReport:
        return await verify_ledger(database, chosen.timezone, month)

    report = run(_verify, chosen)
    if as_json:
        echo_json(report.as_json())
    else:
        for finding in report.findings:
            click.echo(str(finding))
        click.echo(report.summary())
    if not report.verifies:
        raise SystemExit(1)


COMMANDS = [audit]
