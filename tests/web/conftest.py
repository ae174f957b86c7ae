"""An HTTP client on the ASGI app, in the test's own event loop, on the run's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clearhouse.config import Settings
from clearhouse.services.database import Database
from clearhouse.web.app import create_app

SANDBOX = Settings.from_env({"CLEARHOUSE_SANDBOX": "1"})


def client_for(settings: Settings, database: Database) -> httpx.AsyncClient:
    app = create_app(settings, database)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.public_base_url
    )


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(SANDBOX, database) as client:
        yield client
