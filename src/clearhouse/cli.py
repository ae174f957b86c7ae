"""The ``clearhouse`` command: each subcommand a few lines over a service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import click

from clearhouse.config import Settings, SettingsError
from clearhouse.domain.errors import ClearhouseError
from clearhouse.services.clock import ledger_time, set_ledger_time
from clearhouse.services.database import Database
from clearhouse.storage.engine import create_engine, resolve_database_url
from clearhouse.storage.migrate import current_revision, upgrade

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` on the configured database; a domain error becomes one clear line."""
    settings = _settings()

    async def _main() -> T:
        database = Database(create_engine(resolve_database_url(settings), pool_size=2))
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(_main())
    except ClearhouseError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Clearhouse: the clearing house of a loyalty coalition.

    With no DATABASE_URL, every command uses the embedded PostgreSQL in .clearhouse/.
    """


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied.

    Example: clearhouse db upgrade
    """

    async def _upgrade(database: Database) -> str | None:
        await upgrade(database.engine)
        return await current_revision(database.engine)

    click.echo(f"database at revision {_run(_upgrade)}")


@main.command()
@click.option("--host", default=None, help="Address to listen on (CLEARHOUSE_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (CLEARHOUSE_PORT).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API.

    Example: clearhouse serve --port 8000
    """
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "clearhouse.web.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@main.group()
def clock() -> None:
    """The ledger clock (settable in sandbox mode only)."""


@clock.command("show")
def clock_show() -> None:
    """Print the ledger clock.

    Example: clearhouse clock show
    """
    click.echo(_run(ledger_time).isoformat())


@clock.command("set")
@click.argument("moment")
def clock_set(moment: str) -> None:
    """Set the ledger clock in sandbox mode; it keeps ticking from there.

    Example: CLEARHOUSE_SANDBOX=1 clearhouse clock set 2026-12-01T00:00:05Z
    """
    try:
        at = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise click.BadParameter(f"{moment!r} is not an RFC 3339 time") from exc
    sandbox = _settings().sandbox

    async def _set(database: Database) -> datetime:
        return await set_ledger_time(database, sandbox=sandbox, at=at)

    click.echo(_run(_set).isoformat())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
