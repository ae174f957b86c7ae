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

from clearhouse.crypto.webhooks import new_secret, seal_secret, secret_text
from clearhouse.domain.errors import (
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
        self, partner_id: str, url: str, event_types: object, *, hmac_secret: bool
    ) -> tuple[WebhookEndpoint, str | None]:
        """The new endpoint and, when asked for, its HMAC secret (``whsec_...``, shown once)."""
        await self.check_url(url)
        types = validate_event_types(event_types)
        endpoint_id = f"we_{secrets.token_hex(16)}"
        secret = None
        shown = None
        if hmac_secret:
            raw = new_secret()
            shown = secret_text(raw)
            secret = seal_secret(self._master_key, endpoint_id, raw)
        async with self._database.transaction() as connection:
            endpoint = await store.insert_endpoint(
                connection, endpoint_id, partner_id, url, types, secret, ENDPOINTS_PER_PARTNER_MAX
            )
        if endpoint is None:
            raise LimitExceeded(
                f"a partner has at most {ENDPOINTS_PER_PARTNER_MAX} webhook endpoints"
            )
        return endpoint, shown

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

    async def test(self, partner_id: str, endpoint_id: str) -> str:
        """A test event for the endpoint alone; its event id."""
        endpoint = await self.endpoint(partner_id, endpoint_id)
        if endpoint.disabled_at is not None:
            raise WebhookEndpointDisabled(
                f"the endpoint was disabled: {endpoint.disabled_reason or 'by the operator'}"
            )
        async with self._database.transaction() as connection:
            return await store.record_test_event(
                connection, partner_id, endpoint_id, TEST_EVENT_TYPE
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
