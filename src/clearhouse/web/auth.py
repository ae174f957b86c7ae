"""Operator and auditor bearer tokens: a guard per role. The guard leaves the token's holder in
the request's state (``holder_of``), for the operator action log."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from clearhouse.domain.errors import ClearhouseError, Forbidden
from clearhouse.services import access
from clearhouse.services.access import Role, TokenHolder

_STATE_KEY = "token_holder"


class InvalidToken(ClearhouseError):
    code = "invalid_token"


def holder_of(connection: ASGIConnection[Any, Any, Any, Any]) -> TokenHolder:
    """The holder the guard found (a guarded route only)."""
    holder: TokenHolder = connection.scope["state"][_STATE_KEY]
    return holder


async def _holder(connection: ASGIConnection[Any, Any, Any, Any]) -> TokenHolder:
    header = connection.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise InvalidToken("an operator or auditor bearer token is required")
    holder = await access.token_holder(connection.app.state.database, secret.strip())
    if holder is None:
        raise InvalidToken("the token is wrong, expired or revoked")
    connection.scope.setdefault("state", {})[_STATE_KEY] = holder
    return holder


async def operator_only(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    if (await _holder(connection)).role is not Role.OPERATOR:
        raise Forbidden("this needs an operator token")


async def auditor_or_operator(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    await _holder(connection)
