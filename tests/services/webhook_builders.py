"""Endpoints, events and workers for the delivery tests, on a database of the test's own.

An endpoint is a ``webhook_endpoints`` row (its HMAC secret sealed as the endpoint service
seals it), an event goes through ``outbox_record`` as the ledger's triggers do, and a worker is
a ``DeliveryWorker`` with a short lease and a resolver, clock and jitter the test controls.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.config import SANDBOX_MASTER_KEY
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.crypto.webhooks import new_secret, seal_secret
from clearhouse.services.database import Database
from clearhouse.services.delivery import DeliveryWorker, Resolver

MASTER_KEY = SANDBOX_MASTER_KEY
LEASE_S = 0.4
"""Short, so that a test can outwait a dead worker's claim."""


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    partner_id: str
    secret: bytes | None


async def an_endpoint(
    database: Database,
    partner_id: str,
    url: str,
    *,
    event_types: Sequence[str] = ("entry.recorded",),
    with_secret: bool = False,
) -> Endpoint:
    endpoint_id = f"we_{uuid.uuid4().hex}"
    secret = new_secret() if with_secret else None
    sealed = None if secret is None else seal_secret(MASTER_KEY, endpoint_id, secret)
    async with database.driver_connection() as connection:
        await connection.execute(
            "INSERT INTO webhook_endpoints (endpoint_id, partner_id, url, event_types, secret)"
            " VALUES ($1, $2, $3, $4, $5)",
            endpoint_id,
            partner_id,
            url,
            list(event_types),
            sealed,
        )
    return Endpoint(endpoint_id, partner_id, secret)


async def an_event(
    database: Database,
    partner_id: str | None,
    event_type: str = "entry.recorded",
    **data: Any,
) -> str:
    """An event recorded as the ledger's triggers record one; its id."""
    async with database.driver_connection() as connection:
        event_id = await connection.fetchval(
            "SELECT outbox_record($1, $2, ledger_now(), $3::jsonb)",
            event_type,
            partner_id,
            json.dumps({"entry_id": str(uuid.uuid4()), "points": 5, **data}),
        )
    assert isinstance(event_id, str)
    return event_id


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    event_id: str
    endpoint_id: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    lease_until: datetime | None
    delivered_at: datetime | None


async def deliveries_of(database: Database, event_id: str) -> list[Delivery]:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            """
            SELECT delivery_id, event_id, endpoint_id, status, attempts, last_status, last_error,
                   next_attempt_at, last_attempt_at, lease_until, delivered_at
              FROM webhook_deliveries WHERE event_id = $1 ORDER BY delivery_id
            """,
            event_id,
        )
    return [Delivery(**dict(r)) for r in rows]


async def delivery_of(database: Database, event_id: str) -> Delivery:
    (delivery,) = await deliveries_of(database, event_id)
    return delivery


async def stored_body(database: Database, event_id: str) -> bytes:
    async with database.driver_connection() as connection:
        body = await connection.fetchval("SELECT body FROM events WHERE event_id = $1", event_id)
    return bytes(body)


async def endpoint_state(database: Database, endpoint_id: str) -> dict[str, Any]:
    async with database.driver_connection() as connection:
        row = await connection.fetchrow(
            "SELECT disabled_at, disabled_reason, failing_since FROM webhook_endpoints"
            " WHERE endpoint_id = $1",
            endpoint_id,
        )
    return dict(row)


async def operator_events(database: Database, event_type: str) -> list[dict[str, Any]]:
    """The events of a type that go to no partner: their data."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT data FROM events WHERE type = $1 AND partner_id IS NULL ORDER BY seq",
            event_type,
        )
    return [json.loads(r["data"]) for r in rows]


def a_webhook_key() -> CoalitionKey:
    return CoalitionKey.of(Ed25519PrivateKey.generate())


def loopback(*names: str) -> Resolver:
    """A resolver that answers 127.0.0.1 for the given names (and refuses any other)."""
    return fixed({name: ["127.0.0.1"] for name in names})


def fixed(answers: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host} does not resolve here")
        return list(answers[host])

    return resolve


def shifted(by: timedelta) -> Callable[[], datetime]:
    """The real clock, ``by`` ahead."""
    return lambda: datetime.now(UTC) + by


def a_worker(
    database: Database,
    key: CoalitionKey | None = None,
    *,
    sandbox: bool = True,
    lease_s: float = LEASE_S,
    **options: Any,
) -> DeliveryWorker:
    options.setdefault("random", lambda: 0.5)
    return DeliveryWorker(
        database,
        key or a_webhook_key(),
        MASTER_KEY,
        sandbox=sandbox,
        lease_s=lease_s,
        **options,
    )


async def deliver_until_settled(*workers: DeliveryWorker, timeout_s: float = 20) -> None:
    """Run the workers side by side until none finds anything due."""

    async def drain(worker: DeliveryWorker) -> None:
        idle = 0
        while idle < 3:
            idle = idle + 1 if await worker.run_once() == 0 else 0
            await asyncio.sleep(0.01)

    async with asyncio.timeout(timeout_s):
        await asyncio.gather(*(drain(w) for w in workers))
