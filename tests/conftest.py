"""A database of its own for each test run, built by the real migrations and dropped after.

With ``TEST_DATABASE_URL`` the run uses that server; without it, the embedded PostgreSQL in
``.clearhouse/`` (the same one ``clearhouse serve`` uses when no ``DATABASE_URL`` is set).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url

from clearhouse.services.database import Database
from clearhouse.storage.engine import asyncpg_url, create_engine, embedded_url
from clearhouse.storage.migrate import upgrade
from tests.web import problem_recorder

REPO = Path(__file__).resolve().parents[1]

# A shared, sometimes busy machine: no per-example deadline, and slow input generation is not a
# failure (the properties are what the tests check, not hypothesis's own speed).
settings.register_profile("clearhouse", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("clearhouse")

LAST_MODULE = "tests/web/test_problem_codes_documented.py"
"""Compares the problems the whole run received with the document, so it runs after the rest."""


def pytest_configure(config: pytest.Config) -> None:
    config.add_cleanup(problem_recorder.install())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The comparison of received and documented problem codes goes last (a stable sort)."""
    items.sort(key=lambda item: item.nodeid.startswith(LAST_MODULE))


def _server_url() -> str:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return asyncpg_url(given)
    return embedded_url(REPO / ".clearhouse")


def _dsn(url: str) -> str:
    """A plain libpq DSN for asyncpg from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The URL of a fresh, migrated database for this run; dropped when the run ends."""
    server_url = _server_url()
    name = f"clearhouse_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(server_url, name))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)

    async def _migrate() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(_migrate())
        yield url
    finally:
        asyncio.run(_drop_database(server_url, name))


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database.for_url(database_url, pool_size=20)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def dsn(database_url: str) -> str:
    """The test database as a plain DSN, for tests that attack the database with raw SQL."""
    return _dsn(database_url)


@asynccontextmanager
async def fresh_database() -> AsyncIterator[Database]:
    """A migrated database of its own (for tests that move the sandbox clock or seal periods),
    dropped afterwards."""
    server_url = _server_url()
    name = f"clearhouse_test_{uuid.uuid4().hex[:12]}"
    await _create_database(server_url, name)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    database = Database.for_url(url, pool_size=12)
    try:
        await upgrade(database.engine)
        yield database
    finally:
        await database.dispose()
        await _drop_database(server_url, name)
