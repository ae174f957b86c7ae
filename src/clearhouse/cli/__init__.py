"""The ``clearhouse`` command, one module per command group, each command a few lines over a
service.

Only click, the settings and the domain's errors load at start; services, the database, the web
app and rich are imported inside the commands that use them, so ``clearhouse --help`` is quick.
"""

from __future__ import annotations

import click

from clearhouse import __version__
from clearhouse.cli import (
    audit,
    bench,
    clock,
    coalition_keys,
    contracts,
    db,
    demo,
    entries,
    expiry,
    holds,
    keys,
    members,
    partners,
    periods,
    retention,
    serve,
    statements,
    tokens,
    webhooks,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="clearhouse")
def main() -> None:
    """Clearhouse: the clearing house of a loyalty coalition.

    With no DATABASE_URL, every command uses the embedded PostgreSQL in .clearhouse/.
    """


for _module in (
    db,
    serve,
    partners,
    members,
    contracts,
    retention,
    periods,
    statements,
    entries,
    holds,
    expiry,
    audit,
    demo,
    coalition_keys,
    keys,
    tokens,
    clock,
    webhooks,
    bench,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
