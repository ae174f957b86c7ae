"""Operator and auditor bearer tokens: a guard per role."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from clearhouse.domain.errors import ClearhouseError, Forbidden
from clearhouse.services import access
from clearhouse.services.access import Role


class InvalidToken(ClearhouseError):
    code = "invalid_token"


async def _role(connection: ASGIConnection[Any, Any, Any, Any]) -> Role:
    header = connection.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise InvalidToken("an operator or auditor bearer token is required")
    role = await access.token_role(connection.app.state.database, secret.strip())
    if role is None:
        raise InvalidToken("the token is wrong, expired or revoked")
    return role


async def operator_only(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    if await _role(connection) is not Role.OPERATOR:
        raise Forbidden("this needs an operator token")


async def auditor_or_operator(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    await _role(connection)
