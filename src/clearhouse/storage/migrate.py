"""Runs the Alembic migrations of ``clearhouse.migrations`` on an async engine.

The migrations are package data (found with ``importlib.resources``), so an installed Clearhouse
migrates its database as a checkout does. ``function_sql`` reads a database function's file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def migrations_dir() -> Path:
    """The folder of the migrations: Alembic reads its scripts from files on disk."""
    folder = resources.files("clearhouse.migrations")
    if not isinstance(folder, Path):
        raise RuntimeError(f"the migrations must be installed as files, not in {folder}")
    return folder


def function_sql(name: str, revision: str) -> str:
    """The ``CREATE FUNCTION`` statement of ``name`` as ``revision`` made it.

    It is the one statement of ``clearhouse/migrations/functions/NAME.REVISION.sql``.
    """
    script = (migrations_dir() / "functions" / f"{name}.{revision}.sql").read_text("utf-8")
    (statement,) = split_sql(script)
    if not statement.startswith(f"CREATE FUNCTION {name}("):
        raise ValueError(f"functions/{name}.{revision}.sql does not create {name}")
    return statement


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database of ``engine`` to ``revision`` (the newest by default)."""

    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def split_sql(script: str) -> list[str]:
    """Split a migration's SQL into statements at ``;`` ending a line outside ``$$`` bodies.

    The driver prepares each statement, so a script of several must go one by one.
    """
    statements: list[str] = []
    current: list[str] = []
    in_body = False
    for line in script.splitlines():
        if line.lstrip().startswith("--") and not in_body:
            continue
        current.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().removesuffix(";")
            if statement:
                statements.append(statement)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements
