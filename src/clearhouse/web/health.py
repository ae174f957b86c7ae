"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State

from clearhouse.services.clock import ledger_time
from clearhouse.services.database import Database
from clearhouse.services.metrics import CONTENT_TYPE, exposition
from clearhouse.web.api_docs import TOKEN_BEARING
from clearhouse.web.auth import operator_only
from clearhouse.web.problems import problem_responses


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    ledger_time: str


class HealthController(Controller):
    tags = ("health",)

    @get("/health", summary="Liveness: the process answers", responses=problem_responses())
    async def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/ready",
        summary="Readiness: the database answers",
        responses=problem_responses("unavailable", "internal_error"),
    )
    async def ready(self, state: State) -> Readiness:
        database: Database = state.database
        now = await ledger_time(database)
        return Readiness(status="ready", ledger_time=now.isoformat().replace("+00:00", "Z"))


@get(
    "/metrics",
    summary="Prometheus metrics of the server, all workers summed (operator token)",
    tags=["health"],
    include_in_schema=True,
    guards=[operator_only],
    security=TOKEN_BEARING,
    responses=problem_responses("invalid_token", "forbidden", "unavailable"),
)
async def metrics() -> Response[bytes]:
    # As a header, not a media type: Litestar appends a second charset to a ``text/`` one.
    return Response(exposition(), headers={"Content-Type": CONTENT_TYPE})
