"""``clearhouse retention``: removal of data past its retention."""

from __future__ import annotations

import click

from clearhouse.cli.common import emit, json_option, run


@click.group()
def retention() -> None:
    """Removal of data past its retention."""


@retention.command("run")
@json_option
def retention_run(as_json: bool) -> None:
    """Remove entry metadata past its contract's retention, and report what went.

    Example: clearhouse retention run
    """
    from clearhouse.services.retention import run_retention

    rows = [
        {
            "partner_id": r.partner_id,
            "purpose": r.purpose,
            "retention_days": r.retention_days,
            "removed": r.removed,
        }
        for r in run(run_retention)
    ]
    emit(rows, as_json, "Entry metadata removed")


COMMANDS = [retention]
