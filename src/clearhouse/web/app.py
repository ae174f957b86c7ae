"""The Litestar application factory.

``create_app`` wires the settings, the database, the problem responses, request ids and
logs, and the controllers; ``clearhouse serve`` runs ``app_from_env`` under uvicorn.
"""

from __future__ import annotations

import logging

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from clearhouse import __version__
from clearhouse.config import Settings
from clearhouse.services.database import Database
from clearhouse.storage.engine import create_engine, resolve_database_url
from clearhouse.web.health import HealthController
from clearhouse.web.problems import exception_handlers, problem_plugin
from clearhouse.web.request_id import RequestIdMiddleware


def configure_logging(level: str) -> None:
    """JSON log lines on stderr; no bodies, headers, secrets or personal data are logged."""
    logging.basicConfig(level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )


def create_app(settings: Settings, database: Database | None = None) -> Litestar:
    """The app for ``settings``; a ``database`` given by the caller is used and not disposed."""
    owns_database = database is None
    state = State({"settings": settings, "database": database})

    async def open_database(app: Litestar) -> None:
        if app.state.database is None:
            url = resolve_database_url(settings)
            app.state.database = Database(create_engine(url, pool_size=settings.db_pool_size))

    async def close_database(app: Litestar) -> None:
        if owns_database and app.state.database is not None:
            await app.state.database.dispose()

    return Litestar(
        route_handlers=[HealthController],
        state=state,
        on_startup=[open_database],
        on_shutdown=[close_database],
        plugins=[problem_plugin()],
        exception_handlers=exception_handlers(),
        middleware=[RequestIdMiddleware()],
        openapi_config=OpenAPIConfig(
            title="Clearhouse",
            version=__version__,
            description="The clearing house of a loyalty coalition: signed partner API, "
            "operator and auditor endpoints. Errors are RFC 9457 problems with a stable `code`.",
            path="/schema",
        ),
        logging_config=None,
        debug=False,
    )


def app_from_env() -> Litestar:
    """The app configured from the environment (for uvicorn's ``--factory``)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)
