"""The Litestar application factory.

``create_app`` wires the settings, the database, the problem responses, request ids and
logs, and the controllers; ``clearhouse serve`` runs ``app_from_env`` under uvicorn.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from typing import Any

import asyncpg
import structlog
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.plugins.htmx import HTMXPlugin
from litestar.types import ASGIApp

from clearhouse.config import Settings
from clearhouse.crypto.ed25519 import CoalitionKey, load_or_create_private_key
from clearhouse.domain.errors import ClearhouseError, ExpiryRunInProgress
from clearhouse.services import access
from clearhouse.services.coalition_keys import register as register_coalition_key
from clearhouse.services.composition import Services
from clearhouse.services.database import Database
from clearhouse.services.delivery import DeliveryWorker
from clearhouse.services.events import announce_contract_versions
from clearhouse.services.expiry import Expiry
from clearhouse.services.holds import Holds
from clearhouse.web.admin import (
    ClockController,
    ContractAdminController,
    MemberAdminController,
    PartnerAdminController,
    coalition_keys,
)
from clearhouse.web.api_docs import PARTNER_SIGNED, TOKEN_BEARING, openapi_config, swagger_ui_files
from clearhouse.web.audit import AuditController
from clearhouse.web.bodies import SIGNED_ROUTE, JsonBodyMiddleware, check_signed_body
from clearhouse.web.clearing import (
    AuditStatementController,
    PeriodAdminController,
    StatementController,
)
from clearhouse.web.console import console_router, console_templates
from clearhouse.web.events import (
    EventController,
    WebhookDeliveryAdminController,
    WebhookEndpointController,
)
from clearhouse.web.health import HealthController, metrics
from clearhouse.web.holds import HoldController
from clearhouse.web.limits import ConcurrentRequestsCap, RequestHeaderLimit
from clearhouse.web.members import MemberController
from clearhouse.web.partner import BatchController, TransactionController
from clearhouse.web.problems import exception_handlers, problem_plugin
from clearhouse.web.request_id import RequestIdMiddleware
from clearhouse.web.signatures import PartnerSignatureMiddleware, SignatureVerifier
from clearhouse.web.websockets import without_websockets


def configure_logging(level: str) -> None:
    """JSON log lines on stderr; no bodies, headers, secrets or personal data are logged."""
    logging.basicConfig(level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


NONCE_PURGE_INTERVAL_S = 60

log = structlog.get_logger("clearhouse.web")


def create_app(settings: Settings, database: Database | None = None) -> Litestar:
    """The app for ``settings``; a ``database`` given by the caller is used and not disposed."""
    owns_database = database is None
    master_key = settings.require_master_key()
    coalition_key = CoalitionKey.of(load_or_create_private_key(settings.signing_key_file))
    state = State(
        {
            "settings": settings,
            "database": database,
            "coalition_key": coalition_key,
            "signature_verifier": None,
            "services": None,
            "contracts": None,
            "ledger": None,
            "holds": None,
            "webhooks": None,
            "members": None,
            "clearing": None,
        }
    )

    def attach(app_state: State, database: Database) -> None:
        """The per-process services on one database."""
        app_state.database = database
        app_state.signature_verifier = SignatureVerifier(
            database, settings.public_base_url, settings.signature_window_s
        )
        services = Services(settings, database, coalition_key=coalition_key, master_key=master_key)
        app_state.services = services
        app_state.contracts = services.contracts
        app_state.ledger = services.ledger
        app_state.batches = services.batches
        app_state.holds = services.holds
        app_state.expiry = services.expiry
        app_state.webhooks = services.webhooks
        app_state.members = services.members
        app_state.clearing = services.clearing

    if database is not None:
        attach(state, database)
    background: set[asyncio.Task[None]] = set()
    stop_delivering = asyncio.Event()

    async def purge_nonces_now_and_then(database: Database) -> None:
        while True:
            await asyncio.sleep(NONCE_PURGE_INTERVAL_S)
            try:
                purged = await access.purge_nonces(database)
            except (ClearhouseError, asyncpg.PostgresError) as exc:
                # e.g. a read replica for auditors: no nonces to purge there; keep serving.
                log.warning("nonce purge failed", error_type=type(exc).__name__)
                continue
            log.debug("nonces purged", count=purged)

    async def expire_holds_now_and_then(holds: Holds, database: Database) -> None:
        """The maintenance loop on the ledger clock: the holds sweeper (every worker runs one,
        the database lets one sweep at a time), and contract versions that took effect since,
        announced (contract.version_effective, once each)."""
        while True:
            await asyncio.sleep(settings.hold_sweep_interval_s)
            try:
                ended = await holds.expire_due()
                announced = await announce_contract_versions(database)
            except (ClearhouseError, asyncpg.PostgresError) as exc:
                log.warning("maintenance failed", error_type=type(exc).__name__)
                continue
            if ended or announced:
                log.info("maintenance", holds_expired=ended, versions_announced=announced)

    async def expire_points_now_and_then(expiry: Expiry) -> None:
        """Expiry on the ledger clock (a sandbox clock moved ahead moves it): each worker tries,
        the lock lets one run at a time, and the others wait for their next turn."""
        while True:
            await asyncio.sleep(settings.expiry_interval_s)
            try:
                done = await expiry.run()
            except ExpiryRunInProgress:
                continue
            except (ClearhouseError, asyncpg.PostgresError) as exc:
                log.warning("expiry run failed", error_type=type(exc).__name__)
                continue
            if done.points or done.reminders:
                log.info(
                    "expiry run",
                    entries=done.entries,
                    points=done.points,
                    reminders=done.reminders,
                )

    async def open_database(app: Litestar) -> None:
        if app.state.database is None:
            attach(app.state, Database.for_settings(settings, pool_size=settings.db_pool_size))
        # Published before it signs a receipt; a retired key's file refuses to start.
        await register_coalition_key(app.state.database, coalition_key)
        # The webhook key is read (or made) only here: an app that never serves sends none.
        webhook_key = CoalitionKey.of(load_or_create_private_key(settings.webhook_key_file))
        await register_coalition_key(app.state.database, webhook_key, "webhooks")
        background.add(asyncio.create_task(purge_nonces_now_and_then(app.state.database)))
        if settings.hold_sweep_interval_s:
            background.add(
                asyncio.create_task(expire_holds_now_and_then(app.state.holds, app.state.database))
            )
        if settings.expiry_interval_s:
            background.add(asyncio.create_task(expire_points_now_and_then(app.state.expiry)))
        for _ in range(settings.webhook_workers):
            worker = DeliveryWorker(
                app.state.database,
                webhook_key,
                master_key,
                sandbox=settings.sandbox,
                lease_s=settings.webhook_lease_s,
            )
            background.add(asyncio.create_task(worker.run_forever(stop_delivering)))
        # What the process made to start (modules, the app, its routes) lives as long as it
        # does; frozen out of the cyclic collector's reach, a full collection no longer walks
        # it while a request waits (the p99 of the signed API, docs/scaling.md).
        gc.collect()
        gc.freeze()

    async def close_database(app: Litestar) -> None:
        gc.unfreeze()
        stop_delivering.set()  # a worker cut off mid-attempt leaves a lease that runs out
        for task in background:
            task.cancel()
        if owns_database and app.state.database is not None:
            await app.state.database.dispose()

    partner_api = Router(
        path="/",
        route_handlers=[
            TransactionController,
            HoldController,
            EventController,
            WebhookEndpointController,
            MemberController,
            StatementController,
        ],
        middleware=[PartnerSignatureMiddleware(settings.body_max_bytes)],
        opt={SIGNED_ROUTE: True},
        before_request=check_signed_body,
        security=PARTNER_SIGNED,
    )
    # A batch's body is bigger: the same middleware, with the batch's limit.
    batch_api = Router(
        path="/",
        route_handlers=[BatchController],
        middleware=[PartnerSignatureMiddleware(settings.batch_body_max_bytes)],
        opt={SIGNED_ROUTE: True},
        before_request=check_signed_body,
        security=PARTNER_SIGNED,
    )
    operator_handlers: list[Any] = [
        PartnerAdminController,
        ContractAdminController,
        MemberAdminController,
        AuditController,
        PeriodAdminController,
        AuditStatementController,
        WebhookDeliveryAdminController,
    ]
    if settings.sandbox:
        operator_handlers.append(ClockController)
    operator_api = Router(path="/", route_handlers=operator_handlers, security=TOKEN_BEARING)

    return Litestar(
        route_handlers=[
            HealthController,
            metrics,
            coalition_keys,
            partner_api,
            batch_api,
            operator_api,
            swagger_ui_files(),
            console_router(),
        ],
        state=state,
        on_startup=[open_database],
        on_shutdown=[close_database],
        request_max_body_size=settings.body_max_bytes,
        plugins=[problem_plugin(), HTMXPlugin()],
        template_config=console_templates(),
        exception_handlers=exception_handlers(),
        # The limits come right after the request id, so that their refusals carry one.
        middleware=[
            RequestIdMiddleware(),
            RequestHeaderLimit(settings.header_bytes_max),
            ConcurrentRequestsCap(settings.concurrent_requests_max),
            JsonBodyMiddleware(settings.body_max_bytes),
        ],
        openapi_config=openapi_config(),
        logging_config=None,
        debug=False,
    )


def app_from_env() -> ASGIApp:
    """The app configured from the environment (for uvicorn's ``--factory``), answering
    WebSocket upgrades with a problem (``web.websockets``)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return without_websockets(create_app(settings))
