"""An operator's action asked through the API, run and logged (``services.operator_actions``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Request

from clearhouse.services.operator_actions import Action, Actor, logged
from clearhouse.web.auth import holder_of
from clearhouse.web.request_id import request_id_of

T = TypeVar("T")


async def logged_api(
    request: Request[Any, Any, Any], action: Action, subject: str, work: Awaitable[T]
) -> T:
    actor = Actor(holder_of(request).token_id, "api", request_id_of(request.scope))
    return await logged(request.app.state.database, actor, action, subject, work)
