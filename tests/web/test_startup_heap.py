"""The app's start-up freezes what the process made to start out of the cyclic collector's reach
(``gc.freeze``), so that a full collection under load walks only what requests made; its
shut-down gives it back."""

from __future__ import annotations

import gc
from pathlib import Path

from clearhouse.services.database import Database
from clearhouse.web.app import create_app
from tests.web.harness import settings_for


async def test_start_up_freezes_the_heap_it_made_and_shut_down_gives_it_back(
    database: Database, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path,
        CLEARHOUSE_DATA_DIR=str(tmp_path),
        CLEARHOUSE_HOLD_SWEEP_INTERVAL_S="0",
        CLEARHOUSE_EXPIRY_INTERVAL_S="0",
        CLEARHOUSE_WEBHOOK_WORKERS="0",
    )
    app = create_app(settings, database)
    before = gc.get_freeze_count()
    async with app.lifespan():  # what a server runs around the requests it serves
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0
