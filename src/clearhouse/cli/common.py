"""What the commands share: the settings, running work on the database, printing rows.

Nothing heavy is imported here at module level (no services, SQLAlchemy or rich), so that
``clearhouse --help`` starts at once; each command imports what it uses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from clearhouse.config import Settings, SettingsError
from clearhouse.domain.errors import ClearhouseError

if TYPE_CHECKING:
    from clearhouse.crypto.ed25519 import CoalitionKey
    from clearhouse.services.composition import Services
    from clearhouse.services.database import Database

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

ID_COLUMNS = frozenset({"root", "sha256", "fingerprint"})
"""Columns shown whole besides every ``*_id``: a later command takes them, or a person compares
them."""


def json_option(function: F) -> F:
    """``--json``: the command's data as JSON, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")(function)


def settings() -> Settings:
    """The settings from the environment; a bad one is one line naming the variable."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def require_master_key(of: Settings) -> bytes:
    try:
        return of.require_master_key()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def services(
    database: Database,
    with_settings: Settings | None = None,
    *,
    coalition_key: CoalitionKey | None = None,
    master_key: bytes | None = None,
) -> Services:
    """The services of this command on ``database`` (the composition root the web app uses)."""
    from clearhouse.services.composition import Services

    return Services(
        with_settings or settings(),
        database,
        coalition_key=coalition_key,
        master_key=master_key,
    )


def run(work: Callable[[Database], Awaitable[T]], with_settings: Settings | None = None) -> T:
    """Run ``work`` on the configured database; a domain error becomes one clear line."""
    from clearhouse.services.database import Database

    chosen = with_settings or settings()

    async def _main() -> T:
        database = Database.for_settings(chosen, pool_size=2)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return run_coroutine(_main())


def run_coroutine(coroutine: Awaitable[T]) -> T:
    """``asyncio.run`` with a domain error as one line (``Error: code: detail``)."""

    async def _await() -> T:
        return await coroutine

    try:
        return asyncio.run(_await())
    except ClearhouseError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def emit(rows: Sequence[dict[str, Any]], as_json: bool, title: str) -> None:
    """A table for people, or a JSON list for scripts.

    Ids (``*_id`` and ``ID_COLUMNS``) are never cut or wrapped, since a later command takes
    them; other columns fold onto further lines when the terminal is narrow.
    """
    if as_json:
        echo_json(list(rows))
        return
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    columns = list(rows[0]) if rows else ["(none)"]
    cells = [["" if v is None else str(v) for v in row.values()] for row in rows]
    table = Table(title=title)
    for index, column in enumerate(columns):
        if column.endswith("_id") or column in ID_COLUMNS:
            width = max([len(column), *(len(row[index]) for row in cells)])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold", min_width=len(column))
    for row in cells:
        table.add_row(*row)
    console = Console()
    # Wider than the terminal rather than cut: the terminal wraps the line, the id stays whole.
    needed = Measurement.get(console, console.options.update_width(10_000), table).minimum
    Console(width=max(console.width, needed)).print(table)


def progress(quiet: bool) -> Any:
    """Progress bars on standard error for long work (none when the output is for scripts)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )


def moment(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time with a zone, from option ``name``."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time", param_hint=name) from exc
    if at.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-01T00:00:00Z", param_hint=name)
    return at


def duration(value: str) -> timedelta:
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit():
        raise click.BadParameter(f"{value!r}: write a duration like 90m, 12h or 30d")
    return timedelta(seconds=int(value[:-1]) * units[value[-1]])


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
