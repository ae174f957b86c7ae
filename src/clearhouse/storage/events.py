"""Reading events, and the webhook endpoints and deliveries as partners and operators see them.

Events are written only by the database (``outbox_record``, from the triggers of the writes
they tell of); the reads here page them by ``(txid, seq)`` below the oldest transaction still
running, so a row committed out of order is never skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from clearhouse.domain.events import Event, EventPosition, WebhookDelivery, WebhookEndpoint

_HORIZON = "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"
"""The id of the oldest transaction still running: every event below it is final."""


def _event(row: asyncpg.Record) -> Event:
    body = bytes(row["body"])
    return Event(
        event_id=row["event_id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        data=msgspec.json.decode(body)["data"],
        body=body,
        position=EventPosition(row["txid"], row["seq"]),
    )


async def events_page(
    connection: asyncpg.Connection, partner_id: str, after: EventPosition, limit: int
) -> list[Event]:
    rows = await connection.fetch(
        f"""
        SELECT event_id, type, occurred_at, body, txid, seq FROM events
         WHERE partner_id = $1 AND txid < {_HORIZON} AND (txid, seq) > ($2, $3)
         ORDER BY txid, seq
         LIMIT $4
        """,
        partner_id,
        after.txid,
        after.seq,
        limit,
    )
    return [_event(row) for row in rows]


_ENDPOINT_COLUMNS = """
    endpoint_id, partner_id, url, event_types, secret IS NOT NULL AS has_secret, created_at,
    disabled_at, disabled_reason
"""


def _endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        row["endpoint_id"],
        row["partner_id"],
        row["url"],
        list(row["event_types"]),
        row["has_secret"],
        row["created_at"],
        row["disabled_at"],
        row["disabled_reason"],
    )


async def fetch_endpoint_key(
    connection: asyncpg.Connection, partner_id: str, idempotency_key: str
) -> tuple[bytes, WebhookEndpoint | None] | None:
    """What an Idempotency-Key made before: its fingerprint and the endpoint, if it made one;
    None when the key is new."""
    row = await connection.fetchrow(
        "SELECT request_sha256 FROM idempotency_keys"
        " WHERE partner_id = $1 AND idempotency_key = $2",
        partner_id,
        idempotency_key,
    )
    if row is None:
        return None
    made = await connection.fetchrow(
        f"""
        SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
         WHERE partner_id = $1 AND idempotency_key = $2
        """,
        partner_id,
        idempotency_key,
    )
    return bytes(row["request_sha256"]), None if made is None else _endpoint(made)


async def insert_endpoint(
    connection: asyncpg.Connection,
    endpoint_id: str,
    partner_id: str,
    url: str,
    event_types: Sequence[str],
    secret: bytes | None,
    endpoints_max: int,
    idempotency_key: str,
    request_sha256: bytes,
) -> WebhookEndpoint | None:
    """The new endpoint, or None when the partner has ``endpoints_max`` already (checked under
    a lock on the partner's row, so concurrent registrations cannot pass the limit; not a key
    lock, so the partner's postings do not wait for it)."""
    await connection.execute("SELECT 1 FROM partners WHERE partner_id = $1 FOR UPDATE", partner_id)
    count = await connection.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE partner_id = $1 AND deleted_at IS NULL",
        partner_id,
    )
    if count >= endpoints_max:
        return None
    # The key first: a concurrent twin waits on its index, then fails on it (and replays).
    await connection.execute(
        "INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256)"
        " VALUES ($1, $2, $3)",
        partner_id,
        idempotency_key,
        request_sha256,
    )
    row = await connection.fetchrow(
        f"""
        INSERT INTO webhook_endpoints
               (endpoint_id, partner_id, url, event_types, secret, idempotency_key)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_ENDPOINT_COLUMNS}
        """,
        endpoint_id,
        partner_id,
        url,
        list(event_types),
        secret,
        idempotency_key,
    )
    assert row is not None
    return _endpoint(row)


async def fetch_endpoints(
    connection: asyncpg.Connection, partner_id: str | None, endpoint_id: str | None = None
) -> list[WebhookEndpoint]:
    """The endpoints not deleted (a partner's, or all for the operator; one with its id)."""
    rows = await connection.fetch(
        f"""
        SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
         WHERE deleted_at IS NULL AND ($1::text IS NULL OR partner_id = $1)
           AND ($2::text IS NULL OR endpoint_id = $2)
         ORDER BY created_at, endpoint_id
        """,
        partner_id,
        endpoint_id,
    )
    return [_endpoint(row) for row in rows]


async def delete_endpoint(
    connection: asyncpg.Connection, partner_id: str, endpoint_id: str
) -> bool:
    """Mark the partner's endpoint deleted and cancel what it still had to receive."""
    deleted = await connection.fetchval(
        """
        UPDATE webhook_endpoints SET deleted_at = clock_timestamp()
         WHERE partner_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL
        RETURNING endpoint_id
        """,
        partner_id,
        endpoint_id,
    )
    if deleted is None:
        return False
    await connection.execute(
        "UPDATE webhook_deliveries SET status = 'cancelled', lease_until = NULL"
        " WHERE endpoint_id = $1 AND status = 'pending'",
        endpoint_id,
    )
    return True


async def record_test_event(
    connection: asyncpg.Connection,
    partner_id: str,
    endpoint_id: str,
    test_type: str,
    idempotency_key: str,
) -> str:
    """A test event of the partner's, delivered to this one endpoint only (no endpoint asks
    for the test type, so the outbox makes no other delivery); in the caller's transaction.
    Once per Idempotency-Key: a retry gets the same event back, and nothing is sent twice."""
    dedupe_key = f"test:{partner_id}:{idempotency_key}"
    event_id = await connection.fetchval(
        "SELECT outbox_record($1, $2, ledger_now(),"
        " jsonb_build_object('endpoint_id', $3::text), $4)",
        test_type,
        partner_id,
        endpoint_id,
        dedupe_key,
    )
    if event_id is None:
        return str(
            await connection.fetchval(
                "SELECT event_id FROM events WHERE dedupe_key = $1", dedupe_key
            )
        )
    await connection.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id) VALUES ($1, $2)",
        event_id,
        endpoint_id,
    )
    return str(event_id)


_DELIVERY_COLUMNS = """
    d.delivery_id, d.event_id, e.type AS event_type, d.endpoint_id, w.partner_id, w.url,
    d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error,
    d.delivered_at
"""


def _delivery(row: asyncpg.Record) -> WebhookDelivery:
    return WebhookDelivery(**{name: row[name] for name in WebhookDelivery.__slots__})


async def fetch_deliveries(
    connection: asyncpg.Connection, status: str | None, after: int, limit: int
) -> list[WebhookDelivery]:
    rows = await connection.fetch(
        f"""
        SELECT {_DELIVERY_COLUMNS}
          FROM webhook_deliveries d
          JOIN events e USING (event_id)
          JOIN webhook_endpoints w USING (endpoint_id)
         WHERE ($1::text IS NULL OR d.status = $1) AND d.delivery_id > $2
         ORDER BY d.delivery_id
         LIMIT $3
        """,
        status,
        after,
        limit,
    )
    return [_delivery(row) for row in rows]


async def replay_delivery(
    connection: asyncpg.Connection, delivery_id: int
) -> WebhookDelivery | None:
    """Due again now, with the same event (so the same ``webhook-id``); None when unknown. The
    attempt count goes on (a worker still recording an earlier attempt cannot overwrite this
    one): a replay of a delivery that had failed is one more attempt, now."""
    row = await connection.fetchrow(
        """
        UPDATE webhook_deliveries d
           SET status = 'pending', next_attempt_at = clock_timestamp(), lease_until = NULL,
               delivered_at = NULL
         WHERE d.delivery_id = $1
        RETURNING d.delivery_id
        """,
        delivery_id,
    )
    if row is None:
        return None
    found = await connection.fetchrow(
        f"""
        SELECT {_DELIVERY_COLUMNS}
          FROM webhook_deliveries d
          JOIN events e USING (event_id)
          JOIN webhook_endpoints w USING (endpoint_id)
         WHERE d.delivery_id = $1
        """,
        delivery_id,
    )
    assert found is not None
    return _delivery(found)


async def endpoint_of_delivery(
    connection: asyncpg.Connection, delivery_id: int
) -> WebhookEndpoint | None:
    row = await connection.fetchrow(
        f"""
        SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
         WHERE endpoint_id = (SELECT endpoint_id FROM webhook_deliveries WHERE delivery_id = $1)
           AND deleted_at IS NULL
        """,
        delivery_id,
    )
    return None if row is None else _endpoint(row)


async def announce_contract_versions(connection: asyncpg.Connection) -> int:
    """``contract.version_effective`` for every version in force not yet announced."""
    return int(await connection.fetchval("SELECT contract_versions_announce()"))
