"""``clearhouse serve``: the HTTP API."""

from __future__ import annotations

from contextlib import nullcontext

import click

from clearhouse.cli.common import require_master_key, settings


@click.command()
@click.option("--host", default=None, help="Address to listen on (CLEARHOUSE_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (CLEARHOUSE_PORT).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API.

    Example: clearhouse serve --port 8000
    """
    import uvicorn

    from clearhouse.crypto.ed25519 import load_or_create_private_key
    from clearhouse.services.worker_metrics import shared_by_workers
    from clearhouse.web.server import BoundedHttpToolsProtocol

    served = settings()
    require_master_key(served)
    # Made here, once: workers starting together would each make a key of their own.
    load_or_create_private_key(served.signing_key_file)
    load_or_create_private_key(served.webhook_key_file)
    # Several workers count into one directory of files, summed at /metrics; it must be in the
    # environment before uvicorn spawns them (services/worker_metrics.py).
    with shared_by_workers() if workers > 1 else nullcontext():
        uvicorn.run(
            "clearhouse.web.app:app_from_env",
            factory=True,
            # Bounds the size of each request head and the time its head and body take to
            # arrive (uvicorn's own has no such bounds).
            http=BoundedHttpToolsProtocol,
            host=host or served.host,
            port=port or served.port,
            workers=workers,
            log_level=served.log_level.lower(),
            access_log=False,
        )


COMMANDS = [serve]
