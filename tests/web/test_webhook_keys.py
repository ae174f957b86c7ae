"""The coalition's webhook key as ``serve`` starts: made, registered, published at
``GET /v1/keys`` beside the statement key, rotatable on its own, and signing what the
start-up's delivery worker sends."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import nacl.signing
import pytest
from click.testing import CliRunner
from litestar import Litestar

from clearhouse.cli import main
from clearhouse.crypto.ed25519 import public_bytes
from clearhouse.crypto.webhooks import signed_content, verify_v1a
from clearhouse.services.coalition_keys import KeyOfAnotherPurpose
from clearhouse.services.database import Database
from clearhouse.web.app import create_app
from clearhouse_client.keys import load_private_key
from tests.conftest import fresh_database
from tests.services.builders import a_partner
from tests.services.webhook_builders import an_endpoint, an_event, delivery_of
from tests.services.webhook_receiver import Receiver
from tests.web.harness import settings_for


def _env(directory: Path, **env: str) -> dict[str, str]:
    return {
        "CLEARHOUSE_WEBHOOK_KEY_FILE": str(directory / "coalition-webhook-key.pem"),
        "CLEARHOUSE_WEBHOOK_WORKERS": "0",
        **env,
    }


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its start-up and shut-down run, as under ``serve``, on this event loop."""
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://clearhouse.test"
        ) as client,
    ):
        yield client


async def _published(database: Database, directory: Path, **env: str) -> list[dict[str, object]]:
    app = create_app(settings_for(directory, **_env(directory, **env)), database)
    async with serving(app) as client:
        response = await client.get("/v1/keys")
    assert response.status_code == 200
    keys: list[dict[str, object]] = response.json()["keys"]
    return keys


def _current(keys: list[dict[str, object]]) -> dict[tuple[str, ...], dict[str, object]]:
    return {tuple(k["use"]): k for k in keys if k["status"] == "current"}  # type: ignore[arg-type]


async def test_serve_makes_registers_and_publishes_a_webhook_key_of_its_own(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database:
        keys = await _published(database, tmp_path)
    current = _current(keys)
    assert set(current) == {("response", "statement"), ("webhooks",)}
    key_file = tmp_path / "coalition-webhook-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    webhook_key = public_bytes(load_private_key(key_file.read_bytes()))
    assert base64.b64decode(str(current[("webhooks",)]["public_key"])) == webhook_key
    statement_key = public_bytes(
        load_private_key(settings_for(tmp_path).signing_key_file.read_bytes())
    )
    assert base64.b64decode(str(current[("response", "statement")]["public_key"])) == statement_key


async def test_the_webhook_key_rotates_on_its_own_and_the_old_one_stays_published(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database:
        before = _current(await _published(database, tmp_path))
        env = {
            "DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
            "CLEARHOUSE_SANDBOX": "1",
            "CLEARHOUSE_DATA_DIR": str(tmp_path / "data"),
            "CLEARHOUSE_SIGNING_KEY_FILE": str(tmp_path / "coalition-signing-key.pem"),
            **_env(tmp_path),
        }
        rotated = await asyncio.to_thread(
            CliRunner().invoke, main, ["coalition-key", "rotate", "--purpose", "webhooks"], env=env
        )
        assert rotated.exit_code == 0, rotated.output
        assert f"{before[('webhooks',)]['key_id']} retired" in rotated.output
        listed = await asyncio.to_thread(
            CliRunner().invoke, main, ["coalition-key", "list", "--json"], env=env
        )
        assert listed.exit_code == 0, listed.output
        assert '"purpose": "webhooks"' in listed.output
        keys = await _published(database, tmp_path)
    after = _current(keys)
    assert after[("response", "statement")] == before[("response", "statement")]
    assert after[("webhooks",)]["key_id"] != before[("webhooks",)]["key_id"]
    (old,) = [k for k in keys if k["key_id"] == before[("webhooks",)]["key_id"]]
    assert (old["status"], old["use"]) == ("retired", ["webhooks"])
    assert old["not_after"] is not None
    new_key = public_bytes(load_private_key((tmp_path / "coalition-webhook-key.pem").read_bytes()))
    assert base64.b64decode(str(after[("webhooks",)]["public_key"])) == new_key


async def test_one_key_file_for_both_purposes_is_refused_at_start(tmp_path: Path) -> None:
    shared = str(tmp_path / "coalition-signing-key.pem")
    async with fresh_database() as database:
        app = create_app(
            settings_for(tmp_path, **_env(tmp_path, CLEARHOUSE_WEBHOOK_KEY_FILE=shared)), database
        )
        with pytest.raises(ExceptionGroup) as refused:  # as Litestar's start-up raises
            async with serving(app):
                pass
    (cause,) = refused.value.exceptions
    assert isinstance(cause, KeyOfAnotherPurpose)
    assert "each purpose needs a key of its own" in str(cause)


async def test_the_worker_that_serve_starts_delivers_signed_with_the_published_key(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database, Receiver() as receiver:
        partner = await a_partner(database)
        await an_endpoint(database, partner, receiver.url())
        event_id = await an_event(database, partner)
        settings = settings_for(tmp_path, **_env(tmp_path, CLEARHOUSE_WEBHOOK_WORKERS="1"))
        app = create_app(settings, database)
        async with serving(app) as client:
            await receiver.wait_for_hits(1)
            keys = (await client.get("/v1/keys")).json()["keys"]
            for _ in range(100):  # the worker records the result right after the answer
                if (await delivery_of(database, event_id)).status == "delivered":
                    break
                await asyncio.sleep(0.05)
        assert (await delivery_of(database, event_id)).status == "delivered"
    (hit,) = receiver.hits
    assert hit.headers["webhook-id"] == event_id
    public_key = base64.b64decode(_current(keys)[("webhooks",)]["public_key"])  # type: ignore[arg-type]
    verify_v1a(public_key, hit.headers, hit.body, now=int(time.time()))
    signature = base64.b64decode(hit.headers["webhook-signature"].removeprefix("v1a,"))
    content = signed_content(event_id, int(hit.headers["webhook-timestamp"]), hit.body)
    nacl.signing.VerifyKey(public_key).verify(content, signature)
