"""Claiming and recording webhook deliveries: one statement each, on the real clock.

A worker claims due deliveries in one ``UPDATE … FOR UPDATE SKIP LOCKED``, which commits on its
own: two workers never claim one delivery at once, and the claim (a lease, the attempt counted)
holds no lock while the worker calls out. The attempt's result is recorded only while the
delivery is still at that attempt, so a worker that outlived its lease cannot overwrite the
attempt of the one that took the delivery over. Every time here is ``clock_timestamp()``, the
database's real clock: the sandbox's ledger clock never moves a delivery. Only the operator
event of a disabled endpoint carries ledger time, like every event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import asyncpg

from clearhouse.domain.webhooks import Decision, DueDelivery, Verdict

_CLAIM: Final = """
UPDATE webhook_deliveries d
   SET lease_until = clock_timestamp() + make_interval(secs => $1),
       attempts = d.attempts + 1,
       last_attempt_at = clock_timestamp()
  FROM events e, webhook_endpoints w
 WHERE d.delivery_id IN (
         SELECT due.delivery_id
           FROM webhook_deliveries due
           JOIN webhook_endpoints live ON live.endpoint_id = due.endpoint_id
          WHERE due.status = 'pending' AND due.next_attempt_at <= clock_timestamp()
            AND (due.lease_until IS NULL OR due.lease_until < clock_timestamp())
            AND live.disabled_at IS NULL AND live.deleted_at IS NULL
          ORDER BY due.next_attempt_at
          LIMIT $2
            FOR UPDATE OF due SKIP LOCKED)
   AND e.event_id = d.event_id AND w.endpoint_id = d.endpoint_id
RETURNING d.delivery_id, d.attempts, e.event_id, e.type, e.body,
          w.endpoint_id, w.partner_id, w.url, w.secret, w.failing_since
"""

# The delivery, its endpoint's health and, when the endpoint is disabled now, its waiting
# deliveries, in one statement. A retry of an endpoint disabled or deleted meanwhile is
# cancelled instead. ``before`` is the endpoint as the statement found it: whether this attempt
# is the one that disabled it (two attempts that disable one endpoint at once may both think so;
# the operator event's dedupe key records it once).
_RECORD: Final = """
WITH delivery AS (
    UPDATE webhook_deliveries d
       SET status = CASE WHEN $3 = 'pending' AND EXISTS (
                             SELECT FROM webhook_endpoints gone
                              WHERE gone.endpoint_id = d.endpoint_id
                                AND (gone.disabled_at IS NOT NULL OR gone.deleted_at IS NOT NULL))
                         THEN 'cancelled' ELSE $3 END,
           next_attempt_at = CASE WHEN $3 = 'pending'
                                  THEN clock_timestamp() + make_interval(secs => $4)
                                  ELSE next_attempt_at END,
           delivered_at = CASE WHEN $3 = 'delivered' THEN clock_timestamp() END,
           last_status = $5,
           last_error = $6,
           lease_until = NULL
     WHERE delivery_id = $1 AND attempts = $2 AND status = 'pending'
    RETURNING endpoint_id
), endpoint AS (
    UPDATE webhook_endpoints w
       SET failing_since = CASE WHEN $3 = 'delivered' THEN NULL
                                ELSE coalesce(w.failing_since, clock_timestamp()) END,
           disabled_at = CASE WHEN $7::text IS NOT NULL
                              THEN coalesce(w.disabled_at, clock_timestamp())
                              ELSE w.disabled_at END,
           disabled_reason = CASE WHEN $7::text IS NOT NULL AND w.disabled_at IS NULL THEN $7
                                  ELSE w.disabled_reason END
      FROM delivery, webhook_endpoints before
     WHERE w.endpoint_id = delivery.endpoint_id AND before.endpoint_id = w.endpoint_id
    RETURNING w.endpoint_id, w.partner_id, w.disabled_at,
              ($7::text IS NOT NULL AND before.disabled_at IS NULL) AS disabled_now
), cancelled AS (
    UPDATE webhook_deliveries waiting
       SET status = 'cancelled', lease_until = NULL
      FROM endpoint
     WHERE endpoint.disabled_now AND waiting.endpoint_id = endpoint.endpoint_id
       AND waiting.status = 'pending' AND waiting.delivery_id <> $1
    RETURNING waiting.delivery_id
)
SELECT endpoint.endpoint_id, endpoint.partner_id, endpoint.disabled_at, endpoint.disabled_now,
       (SELECT count(*) FROM cancelled) AS cancelled
  FROM delivery LEFT JOIN endpoint ON true
"""

_ANNOUNCE_DISABLED: Final = """
SELECT outbox_record('webhook_endpoint.disabled', NULL, ledger_now(), $1::jsonb,
                     'webhook_endpoint.disabled:' || $2)
"""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording an attempt did; None from ``record`` when the claim had passed on."""

    endpoint_disabled_now: bool
    deliveries_cancelled: int


async def claim(connection: asyncpg.Connection, lease_s: float, limit: int) -> list[DueDelivery]:
    """Up to ``limit`` due deliveries, each with its attempt counted and a lease of
    ``lease_s``, oldest due first (in autocommit the claim commits at once)."""
    rows = await connection.fetch(_CLAIM, float(lease_s), limit)
    return [
        DueDelivery(
            delivery_id=r["delivery_id"],
            attempt=r["attempts"],
            event_id=r["event_id"],
            event_type=r["type"],
            body=bytes(r["body"]),
            endpoint_id=r["endpoint_id"],
            partner_id=r["partner_id"],
            url=r["url"],
            sealed_secret=None if r["secret"] is None else bytes(r["secret"]),
            failing_since=r["failing_since"],
        )
        for r in rows
    ]


async def record(
    connection: asyncpg.Connection, delivery: DueDelivery, decision: Decision, status: int | None
) -> Recorded | None:
    """Record the attempt's ``decision`` (in the caller's transaction): the delivery delivered,
    due again or failed; its endpoint healthy, failing or disabled, with its waiting deliveries
    cancelled and the operator told. None, with nothing written, when the claim had lapsed and
    another worker took the delivery over."""
    row = await connection.fetchrow(
        _RECORD,
        delivery.delivery_id,
        delivery.attempt,
        decision.verdict.value,
        decision.retry_in_s if decision.verdict is Verdict.RETRY else None,
        status,
        decision.reason,
        decision.disable_endpoint,
    )
    if row is None:
        return None
    disabled_now = bool(row["disabled_now"])
    if disabled_now:
        data = {
            "endpoint_id": row["endpoint_id"],
            "partner_id": row["partner_id"],
            "reason": decision.disable_endpoint,
            "disabled_at": row["disabled_at"].isoformat(),
            "delivery_id": delivery.delivery_id,
        }
        await connection.execute(_ANNOUNCE_DISABLED, json.dumps(data), row["endpoint_id"])
    return Recorded(disabled_now, int(row["cancelled"] or 0))
