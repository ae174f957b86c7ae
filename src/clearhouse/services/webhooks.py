"""Partners' webhook endpoints, and the operator's view of deliveries.

An endpoint names a URL and the event types it wants; Clearhouse refuses a URL it would not
deliver to (not https outside sandbox, userinfo, a host that resolves to a loopback, private or
link-local address; checked again at every delivery, so a name cannot be rebound inside). An
endpoint may ask for an HMAC secret besides the coalition's Ed25519 signature: it is shown once,
when the endpoint is made, and kept only encrypted under the master key.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import asyncpg

from clearhouse.crypto.webhooks import new_secret, seal_secret, secret_text
from clearhouse.domain.errors import (
    IdempotencyKeyReused,
    InvalidWebhookUrl,
    LimitExceeded,
    NotFound,
    WebhookEndpointDisabled,
)
from clearhouse.domain.events import (
    ENDPOINTS_PER_PARTNER_MAX,
    TEST_EVENT_TYPE,
    WebhookDelivery,
    WebhookEndpoint,
    validate_event_types,
)
from clearhouse.domain.idempotency import request_fingerprint, validate_idempotency_key
from clearhouse.domain.webhooks import url_problems
from clearhouse.services.database import Database
from clearhouse.services.delivery import Resolver, resolve_host
from clearhouse.storage import events as store

URL_LENGTH_MAX = 2048


class Webhooks:
    """Registering, reading, deleting and testing endpoints; listing and replaying deliveries."""

    def __init__(
        self,
        database: Database,
        master_key: bytes,
        *,
        sandbox: bool,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._database = database
        self._master_key = master_key
        self._sandbox = sandbox
        self._resolver = resolver

    async def register(
        self,
        partner_id: str,
        url: str,
        event_types: object,
        *,
        hmac_secret: bool,
        idempotency_key: str,
    ) -> tuple[WebhookEndpoint, str | None, bool]:
        """The new endpoint, its HMAC secret when asked for (``whsec_...``, shown once), and
        whether it is a replay: the same key with the same request answers with the endpoint it
        made (without its secret); with another request, ``idempotency_key_reused``."""
        validate_idempotency_key(idempotency_key)
        fingerprint = request_fingerprint(
            "webhook_endpoint",
            {
                "url": url,
                "event_types": sorted(map(str, event_types))
                if isinstance(event_types, list)
                else None,
                "hmac_secret": hmac_secret,
            },
        )
        replay = await self._replay(partner_id, idempotency_key, fingerprint)
        if replay is not None:
            return replay, None, True
        await self.check_url(url)
        types = validate_event_types(event_types)
        endpoint_id = f"we_{secrets.token_hex(16)}"
        secret = None
        shown = None
        if hmac_secret:
            raw = new_secret()
            shown = secret_text(raw)
            secret = seal_secret(self._master_key, endpoint_id, raw)
        try:
            async with self._database.transaction() as connection:
                endpoint = await store.insert_endpoint(
                    connection,
                    endpoint_id,
                    partner_id,
                    url,
                    types,
                    secret,
                    ENDPOINTS_PER_PARTNER_MAX,
                    idempotency_key,
                    fingerprint,
                )
        except asyncpg.UniqueViolationError:
            # A concurrent twin recorded the key first: its answer.
            replay = await self._replay(partner_id, idempotency_key, fingerprint)
            if replay is None:
                raise
            return replay, None, True
        if endpoint is None:
            raise LimitExceeded(
                f"a partner has at most {ENDPOINTS_PER_PARTNER_MAX} webhook endpoints"
            )
        return endpoint, shown, False

    async def _replay(
        self, partner_id: str, idempotency_key: str, fingerprint: bytes
    ) -> WebhookEndpoint | None:
        async with self._database.driver_connection() as connection:
            found = await store.fetch_endpoint_key(connection, partner_id, idempotency_key)
        if found is None:
            return None
        stored, endpoint = found
        if stored != fingerprint or endpoint is None:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used before with a different request"
            )
        return endpoint

    async def check_url(self, url: str) -> None:
        if not isinstance(url, str) or not 1 <= len(url) <= URL_LENGTH_MAX:
            raise InvalidWebhookUrl(f"the URL must be 1 to {URL_LENGTH_MAX} characters")
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InvalidWebhookUrl("the URL's port is not a number from 0 to 65535") from None
        host = parts.hostname or ""
        try:
            addresses = list(await self._resolver(host, port)) if host else []
        except OSError:
            addresses = []  # it does not resolve: url_problems names that
        problems = url_problems(url, addresses, sandbox=self._sandbox)
        if problems:
            raise InvalidWebhookUrl("; ".join(problems))

    async def endpoints(self, partner_id: str | None) -> list[WebhookEndpoint]:
        async with self._database.driver_connection() as connection:
            return await store.fetch_endpoints(connection, partner_id)

    async def endpoint(self, partner_id: str, endpoint_id: str) -> WebhookEndpoint:
        async with self._database.driver_connection() as connection:
            found = await store.fetch_endpoints(connection, partner_id, endpoint_id)
        if not found:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        return found[0]

    async def delete(self, partner_id: str, endpoint_id: str) -> None:
        async with self._database.transaction() as connection:
            if not await store.delete_endpoint(connection, partner_id, endpoint_id):
                raise NotFound(f"no webhook endpoint {endpoint_id}")

    async def test(self, partner_id: str, endpoint_id: str, idempotency_key: str) -> str:
        """A test event for the endpoint alone, once per Idempotency-Key; its event id."""
        validate_idempotency_key(idempotency_key)
        endpoint = await self.endpoint(partner_id, endpoint_id)
        if endpoint.disabled_at is not None:
            raise WebhookEndpointDisabled(
                f"the endpoint was disabled: {endpoint.disabled_reason or 'by the operator'}"
            )
        async with self._database.transaction() as connection:
            return await store.record_test_event(
                connection, partner_id, endpoint_id, TEST_EVENT_TYPE, idempotency_key
            )

    async def deliveries(self, status: str | None, after: int, limit: int) -> list[WebhookDelivery]:
        async with self._database.driver_connection() as connection:
            return await store.fetch_deliveries(connection, status, after, limit)

    async def replay(self, delivery_id: int) -> WebhookDelivery:
        """The delivery due again now, with the same ``webhook-id``."""
        async with self._database.transaction() as connection:
            endpoint = await store.endpoint_of_delivery(connection, delivery_id)
            if endpoint is None:
                raise NotFound(f"no webhook delivery {delivery_id}")
            if endpoint.disabled_at is not None:
                raise WebhookEndpointDisabled(
                    f"the endpoint was disabled: {endpoint.disabled_reason or 'by the operator'}"
                )
            replayed = await store.replay_delivery(connection, delivery_id)
        assert replayed is not None
        return replayed
