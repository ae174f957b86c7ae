"""``clearhouse webhooks``: partners' endpoints and the deliveries to them, as the operator sees
them, and replaying a delivery (with the same ``webhook-id``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from clearhouse.cli.common import echo_json, emit, iso, json_option, require_master_key, run
from clearhouse.cli.common import services as services_of
from clearhouse.cli.common import settings as read_settings

if TYPE_CHECKING:
    from clearhouse.domain.events import WebhookDelivery, WebhookEndpoint
    from clearhouse.services.database import Database
    from clearhouse.services.webhooks import Webhooks

STATUSES = ("pending", "delivered", "failed", "cancelled")


def _webhooks(database: Database) -> Webhooks:
    chosen = read_settings()
    return services_of(database, chosen, master_key=require_master_key(chosen)).webhooks


def delivery_fields(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "delivery_id": delivery.delivery_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "endpoint_id": delivery.endpoint_id,
        "partner_id": delivery.partner_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat(),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "delivered_at": iso(delivery.delivered_at),
    }


def endpoint_fields(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.endpoint_id,
        "partner_id": endpoint.partner_id,
        "url": endpoint.url,
        "event_types": ",".join(endpoint.event_types),
        "status": "active" if endpoint.disabled_at is None else "disabled",
        "disabled_reason": endpoint.disabled_reason,
    }


@click.group()
def webhooks() -> None:
    """Partners' webhook endpoints and the deliveries to them."""


@webhooks.command("endpoints")
@click.option("--partner", "partner_id", default=None, help="Only this partner's endpoints.")
@json_option
def webhooks_endpoints(partner_id: str | None, as_json: bool) -> None:
    """The endpoints partners registered (deleted ones are not shown).

    Example: clearhouse webhooks endpoints --partner shopwelt
    """

    async def _list(database: Database) -> list[WebhookEndpoint]:
        return await _webhooks(database).endpoints(partner_id)

    emit([endpoint_fields(e) for e in run(_list)], as_json, "Webhook endpoints")


@webhooks.command("deliveries")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only these.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most."
)
@json_option
def webhooks_deliveries(status: str | None, limit: int, as_json: bool) -> None:
    """Deliveries in the order they were made, e.g. the failed ones.

    Example: clearhouse webhooks deliveries --status failed
    """

    async def _list(database: Database) -> list[WebhookDelivery]:
        return await _webhooks(database).deliveries(status, 0, limit)

    rows = [delivery_fields(d) for d in run(_list)]
    shown = {"delivery_id", "event_id", "event_type", "partner_id", "status", "attempts"}
    emit(
        [{k: v for k, v in r.items() if as_json or k in shown} for r in rows], as_json, "Deliveries"
    )


@webhooks.command("replay")
@click.argument("delivery_id", type=int)
@json_option
def webhooks_replay(delivery_id: int, as_json: bool) -> None:
    """Deliver again now, with the same webhook-id (receivers deduplicate by it).

    Example: clearhouse webhooks replay 42
    """

    async def _replay(database: Database) -> WebhookDelivery:
        return await _webhooks(database).replay(delivery_id)

    replayed = delivery_fields(run(_replay))
    if as_json:
        echo_json(replayed)
        return
    click.echo(f"delivery {delivery_id} of {replayed['event_id']} is due again now")


COMMANDS = (webhooks,)
