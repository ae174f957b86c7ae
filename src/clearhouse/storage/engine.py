"""The database engine, and the embedded PostgreSQL used when no ``DATABASE_URL`` is set.

The embedded server (the PyPI package ``pgserver``) keeps its files in the settings' data folder
and listens only on a Unix socket; a later run finds it there and reuses it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from clearhouse.config import Settings

_embedded: dict[Path, Any] = {}


def embedded_server(data_dir: Path, *, log_level: str = "INFO") -> Any:
    """Start (or find already running) the embedded PostgreSQL in ``data_dir/pgdata``.

    pgserver logs every command it runs, with its output, at INFO: that is debugging output, so
    it is shown only when ``log_level`` is DEBUG.
    """
    logging.getLogger("pgserver").setLevel(
        logging.DEBUG if log_level == "DEBUG" else logging.WARNING
    )
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as under root); the fallback is fine.
        warnings.simplefilter("ignore")
        from pgserver import postgres_server  # late: starting it is the only reason to load it

    pgdata = (data_dir / "pgdata").resolve()
    if pgdata not in _embedded:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _embedded[pgdata] = postgres_server.get_server(pgdata, cleanup_mode="stop")
    return _embedded[pgdata]


def embedded_url(data_dir: Path, database: str = "postgres", *, log_level: str = "INFO") -> str:
    """The SQLAlchemy URL of a database on the embedded server (Unix socket)."""
    server = embedded_server(data_dir, log_level=log_level)
    socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
    return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"


def asyncpg_url(url: str) -> str:
    """Accept ``postgresql://`` as well as ``postgresql+asyncpg://``."""
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgres://")
    return url


def resolve_database_url(settings: Settings) -> str:
    url = (
        asyncpg_url(settings.database_url)
        if settings.database_url
        else embedded_url(settings.data_dir, log_level=settings.log_level)
    )
    if settings.database_name is None:
        return url
    return make_url(url).set(database=settings.database_name).render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 1) -> AsyncEngine:
    """An async engine (for the migrations) whose connections speak UTC."""
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        connect_args={
            "server_settings": {
                "timezone": "UTC",
                "application_name": "clearhouse",
                "lock_timeout": "5s",
            },
        },
    )
