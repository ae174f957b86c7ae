"""Outbound events over HTTP: a partner's event feed and webhook endpoints (signed,
``Data-Purpose: settlement``), and the operator's view of deliveries (bearer token)."""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from clearhouse.domain.events import (
    EVENTS_PAGE_MAX,
    START,
    Event,
    EventPosition,
    WebhookDelivery,
    WebhookEndpoint,
)
from clearhouse.services.events import events_page
from clearhouse.services.operator_actions import Action
from clearhouse.services.webhooks import Webhooks
from clearhouse.web.actions import logged_api
from clearhouse.web.api_docs import REPLAYABLE
from clearhouse.web.auth import operator_only
from clearhouse.web.partner import (
    BODY_PROBLEMS,
    SIGNED_PROBLEMS,
    DataPurpose,
    IdempotencyKey,
    require_granted,
)
from clearhouse.web.problems import problem_responses
from clearhouse.web.schemas import rfc3339, strict_body

PURPOSE: Final = "settlement"
DELIVERY_ID_MAX: Final = 2**63 - 1
ENDPOINT_PROBLEMS: Final = (
    *SIGNED_PROBLEMS,
    "idempotency_key_reused",
    "invalid_webhook_url",
    "unknown_event_type",
    "limit_exceeded",
    *BODY_PROBLEMS,
)


class EventOut(msgspec.Struct, frozen=True):
    """An event as a webhook delivers it: ``event_id`` is its ``webhook-id``; ``type``,
    ``timestamp`` and ``data`` are its body."""

    event_id: str
    type: str
    timestamp: str
    data: dict[str, Any]


class EventPage(msgspec.Struct, frozen=True):
    events: list[EventOut]
    next_cursor: str
    """Pass as ``after`` for what comes next (the same cursor when nothing came yet)."""


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: str
    event_types: list[str]
    hmac_secret: bool = False
    """Also sign with HMAC (``v1``) under a secret shown once, besides Ed25519 (``v1a``)."""


class EndpointOut(msgspec.Struct, frozen=True, omit_defaults=True):
    endpoint_id: str
    url: str
    event_types: list[str]
    status: str
    """``active`` or ``disabled`` (after 410 Gone, or five days of failures)."""
    created_at: str
    hmac_secret: bool
    disabled_reason: str | None = None
    secret: str | None = None
    """The HMAC secret (``whsec_...``): in the answer that made the endpoint, and never again."""


class EndpointList(msgspec.Struct, frozen=True):
    endpoints: list[EndpointOut]


class TestEventIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Nothing to say: the body is ``{}`` (every signed POST carries a JSON body)."""


class TestEventOut(msgspec.Struct, frozen=True):
    event_id: str


class DeliveryOut(msgspec.Struct, frozen=True):
    delivery_id: int
    event_id: str
    event_type: str
    endpoint_id: str
    partner_id: str
    url: str
    status: str
    attempts: int
    next_attempt_at: str
    last_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    delivered_at: str | None


class DeliveryList(msgspec.Struct, frozen=True):
    deliveries: list[DeliveryOut]


def _event_out(event: Event) -> EventOut:
    body = msgspec.json.decode(event.body)
    return EventOut(event.event_id, body["type"], body["timestamp"], body["data"])


def endpoint_out(endpoint: WebhookEndpoint, secret: str | None = None) -> EndpointOut:
    return EndpointOut(
        endpoint_id=endpoint.endpoint_id,
        url=endpoint.url,
        event_types=endpoint.event_types,
        status="active" if endpoint.disabled_at is None else "disabled",
        created_at=rfc3339(endpoint.created_at),
        hmac_secret=endpoint.has_secret,
        disabled_reason=endpoint.disabled_reason,
        secret=secret,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    def moment(value: Any) -> str | None:
        return None if value is None else rfc3339(value)

    return DeliveryOut(
        delivery_id=row.delivery_id,
        event_id=row.event_id,
        event_type=row.event_type,
        endpoint_id=row.endpoint_id,
        partner_id=row.partner_id,
        url=row.url,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=rfc3339(row.next_attempt_at),
        last_attempt_at=moment(row.last_attempt_at),
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=moment(row.delivered_at),
    )


def _webhooks(request: Request[Any, Any, Any]) -> Webhooks:
    webhooks: Webhooks = request.app.state.webhooks
    return webhooks


class EventController(Controller):
    """The partner's own events, oldest first."""

    path = "/v1/events"
    tags = ("events",)

    @get(
        "/",
        summary="The partner's events after a cursor (Data-Purpose: settlement); only events "
        "of transactions that have ended, so no later commit lands before a cursor given out",
        responses=problem_responses(*SIGNED_PROBLEMS),
    )
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        data_purpose: DataPurpose,
        after: Annotated[str | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=EVENTS_PAGE_MAX)] = 100,
    ) -> EventPage:
        partner = await require_granted(request, PURPOSE)
        position = START if after is None else EventPosition.of_cursor(after)
        events = await events_page(request.app.state.database, partner.partner_id, position, limit)
        last = events[-1].position if events else position
        return EventPage([_event_out(e) for e in events], last.cursor())


class WebhookEndpointController(Controller):
    """The partner's webhook endpoints."""

    path = "/v1/webhook-endpoints"
    tags = ("events",)

    @post(
        "/",
        status_code=201,
        summary="Register a webhook endpoint (Data-Purpose: settlement)",
        responses=problem_responses(*ENDPOINT_PROBLEMS),
        response_headers=REPLAYABLE,
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[EndpointIn],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> Response[EndpointOut]:
        partner = await require_granted(request, PURPOSE)
        body = await strict_body(request, EndpointIn)
        endpoint, secret, replayed = await _webhooks(request).register(
            partner.partner_id,
            body.url,
            body.event_types,
            hmac_secret=body.hmac_secret,
            idempotency_key=idempotency_key,
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return Response(endpoint_out(endpoint, secret), status_code=201, headers=headers)

    @get(
        "/",
        summary="The partner's webhook endpoints (Data-Purpose: settlement)",
        responses=problem_responses(*SIGNED_PROBLEMS),
    )
    async def list_endpoints(
        self, request: Request[Any, Any, Any], data_purpose: DataPurpose
    ) -> EndpointList:
        partner = await require_granted(request, PURPOSE)
        found = await _webhooks(request).endpoints(partner.partner_id)
        return EndpointList([endpoint_out(e) for e in found])

    @get(
        "/{endpoint_id:str}",
        summary="One of the partner's webhook endpoints (Data-Purpose: settlement)",
        responses=problem_responses(*SIGNED_PROBLEMS, "not_found"),
    )
    async def read(
        self, request: Request[Any, Any, Any], endpoint_id: FromPath[str], data_purpose: DataPurpose
    ) -> EndpointOut:
        partner = await require_granted(request, PURPOSE)
        return endpoint_out(await _webhooks(request).endpoint(partner.partner_id, endpoint_id))

    @delete(
        "/{endpoint_id:str}",
        status_code=204,
        summary="Delete a webhook endpoint; what it had still to receive is cancelled "
        "(Data-Purpose: settlement)",
        responses=problem_responses(*SIGNED_PROBLEMS, "not_found"),
    )
    async def remove(
        self, request: Request[Any, Any, Any], endpoint_id: FromPath[str], data_purpose: DataPurpose
    ) -> None:
        partner = await require_granted(request, PURPOSE)
        await _webhooks(request).delete(partner.partner_id, endpoint_id)

    @post(
        "/{endpoint_id:str}/test",
        status_code=202,
        summary="Send a test event to this endpoint alone (Data-Purpose: settlement)",
        responses=problem_responses(
            *SIGNED_PROBLEMS, *BODY_PROBLEMS, "not_found", "webhook_endpoint_disabled"
        ),
    )
    async def test(
        self,
        request: Request[Any, Any, Any],
        endpoint_id: FromPath[str],
        data: JSONBody[TestEventIn],
        idempotency_key: IdempotencyKey,
        data_purpose: DataPurpose,
    ) -> TestEventOut:
        partner = await require_granted(request, PURPOSE)
        await strict_body(request, TestEventIn)
        event_id = await _webhooks(request).test(partner.partner_id, endpoint_id, idempotency_key)
        return TestEventOut(event_id)


class WebhookDeliveryAdminController(Controller):
    """Deliveries as the operator sees them, and replaying one (same ``webhook-id``)."""

    path = "/v1/admin/webhook-deliveries"
    tags = ("operator",)
    guards = [operator_only]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get(
        "/",
        summary="Webhook deliveries, by id (e.g. ?status=failed)",
        responses=problem_responses("invalid_request", "invalid_token", "forbidden"),
    )
    async def list_deliveries(
        self,
        state: State,
        status: Annotated[
            str | None, QueryParameter(pattern="^(pending|delivered|failed|cancelled)$")
        ] = None,
        after: Annotated[int, QueryParameter(ge=0, le=DELIVERY_ID_MAX)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> DeliveryList:
        webhooks: Webhooks = state.webhooks
        return DeliveryList(
            [delivery_out(d) for d in await webhooks.deliveries(status, after, limit)]
        )

    @post(
        "/{delivery_id:int}/replay",
        status_code=200,
        summary="Deliver again now, with the same webhook-id",
        responses=problem_responses(
            "invalid_request",
            "invalid_token",
            "forbidden",
            "not_found",
            "webhook_endpoint_disabled",
        ),
    )
    async def replay(
        self,
        request: Request[Any, Any, Any],
        state: State,
        delivery_id: Annotated[int, Parameter(ge=1, le=DELIVERY_ID_MAX)],
    ) -> DeliveryOut:
        webhooks: Webhooks = state.webhooks
        replaying = webhooks.replay(delivery_id)
        return delivery_out(await logged_api(request, Action.REPLAY, str(delivery_id), replaying))
