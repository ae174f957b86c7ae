"""The migrations build what ``storage/tables.py`` describes, go down and up again to the same
functions, and the live database functions are exactly the newest files under
``clearhouse/migrations/functions/``."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from clearhouse.storage.engine import create_engine
from clearhouse.storage.migrate import (
    alembic_config,
    current_revision,
    function_sql,
    migrations_dir,
    upgrade,
)
from clearhouse.storage.tables import metadata

SchemaObjects = dict[str, set[tuple[str, ...]]]


async def _differences(engine: AsyncEngine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``metadata``."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    def downgrade(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(downgrade)


async def _schema_objects(dsn: str) -> SchemaObjects:
    """Every table, index, sequence, function (with its whole definition), trigger and constraint
    in schema ``public``."""
    connection = await asyncpg.connect(dsn)
    try:
        queries = {
            "relations": """
                SELECT c.relname, c.relkind::text FROM pg_class c
                  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
            """,
            "functions": """
                SELECT p.proname, pg_get_function_identity_arguments(p.oid),
                       pg_get_functiondef(p.oid) FROM pg_proc p
                  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
            """,
            "triggers": """
                SELECT t.tgname, c.relname FROM pg_trigger t
                  JOIN pg_class c ON c.oid = t.tgrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND NOT t.tgisinternal
            """,
            "constraints": """
                SELECT co.conname, pg_get_constraintdef(co.oid) FROM pg_constraint co
                  JOIN pg_namespace n ON n.oid = co.connamespace WHERE n.nspname = 'public'
            """,
        }
        return {
            kind: {tuple(str(value) for value in row) for row in await connection.fetch(query)}
            for kind, query in queries.items()
        }
    finally:
        await connection.close()


def _without_version_table(objects: SchemaObjects, version_table: str) -> SchemaObjects:
    """Alembic keeps its own version table at ``base``; everything else must be gone."""

    def alembics(names: Sequence[str]) -> bool:
        return any(n == version_table or n.startswith(f"{version_table}_") for n in names)

    return {kind: {row for row in rows if not alembics(row)} for kind, rows in objects.items()}


@pytest.fixture
async def throwaway_url(database_url: str, dsn: str) -> AsyncIterator[str]:
    """An empty database of its own on the test server, dropped afterwards."""
    name = f"clearhouse_migrations_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def test_the_tables_module_matches_what_the_migrations_build(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await _differences(engine) == []
    finally:
        await engine.dispose()


async def test_the_migrations_go_down_to_base_and_up_to_head_again(throwaway_url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    dsn = _plain_dsn(throwaway_url)
    engine = create_engine(throwaway_url)
    try:
        empty = await _schema_objects(dsn)
        await upgrade(engine)
        assert await current_revision(engine) == head
        built = await _schema_objects(dsn)
        assert built["relations"] - empty["relations"]  # the migrations did build something

        await _downgrade(engine, "base")
        assert await current_revision(engine) is None
        assert _without_version_table(await _schema_objects(dsn), "alembic_version") == empty

        await upgrade(engine)
        assert await current_revision(engine) == head
        assert await _schema_objects(dsn) == built
        assert await _differences(engine) == []
    finally:
        await engine.dispose()


FUNCTION_FILE = re.compile(r"^(?P<name>[a-z_]+)\.(?P<revision>[0-9]{4})\.sql$")


def _newest_function_files() -> dict[str, str]:
    """Each function's name and the revision of its newest file: the version that is live."""
    newest: dict[str, str] = {}
    for file in (migrations_dir() / "functions").iterdir():
        found = FUNCTION_FILE.match(file.name)
        assert found, f"functions/{file.name} is not named NAME.REVISION.sql"
        name, revision = found["name"], found["revision"]
        newest[name] = max(newest.get(name, revision), revision)
    return newest


def _body(statement: str) -> str:
    """The text between the ``$$`` of a ``CREATE FUNCTION``: what PostgreSQL keeps verbatim."""
    _, body, _ = statement.split("$$")
    return body


async def test_the_live_database_functions_are_the_newest_files_and_only_those(dsn: str) -> None:
    newest = _newest_function_files()
    connection = await asyncpg.connect(dsn)
    try:
        live = {
            row["proname"]: row["prosrc"]
            for row in await connection.fetch(
                """
                SELECT p.proname, p.prosrc FROM pg_proc p
                  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
                """
            )
        }
    finally:
        await connection.close()
    assert set(live) == set(newest)
    for name, revision in newest.items():
        assert live[name] == _body(function_sql(name, revision)), f"{name}.{revision}.sql"
