"""An HTTP client on the ASGI app, in the test's own event loop, on the run's database; and the
fixtures most web tests share: the signed API, a partner, a member, an operator's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clearhouse.config import Settings
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.database import Database
from clearhouse.web.app import create_app
from tests.web.harness import Partner, SignedApi, signed_api, utc_now

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


@pytest.fixture
async def api(database: Database, tmp_path: Path) -> AsyncIterator[SignedApi]:
    async with signed_api(database, tmp_path) as api:
        yield api


@pytest.fixture
async def partner(api: SignedApi) -> Partner:
    return await api.partner()


@pytest.fixture
async def member(api: SignedApi) -> str:
    return await api.member()


@pytest.fixture
async def operator(database: Database) -> dict[str, str]:
    issued = await access.create_token(database, Role.OPERATOR, utc_now() + timedelta(hours=1))
    return {"Authorization": f"Bearer {issued.secret}"}
