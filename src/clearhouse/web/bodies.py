"""JSON bodies are checked once, as bytes, before anything decodes them.

A gateway, an audit tool and Clearhouse must all read the same transaction from the same body,
so a body is refused (``400 invalid_request``) when JSON parsers may disagree on it or when
decoding it could exhaust the process:

- it is not UTF-8 (also inside a string), or not JSON;
- an object names a key twice, at any depth (``{"points": 1, "points": 1000}``; the problem's
  pointer is the key named again, ``#/points``);
- it nests deeper than ``JSON_DEPTH_MAX`` (checked before any recursive decoder runs).

``JsonBodyMiddleware`` applies this to every request whose ``Content-Type`` is JSON and hands
the checked bytes on; larger bodies than the configured limit are ``413``. Signed partner
routes (opt ``SIGNED_ROUTE``) run the same check in ``check_signed_body``, a hook that runs
once the signature verified and before the handler decodes, so the refusal carries a receipt.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPRequestEvent, Receive, ReceiveMessage, Scope, Send

from clearhouse.domain.errors import ClearhouseError, Field, InvalidRequest

SIGNED_ROUTE: Final = "signed"
"""The opt key of routes whose bodies are checked after their signature."""
JSON_DEPTH_MAX: Final = 32
"""Arrays and objects inside one another; partner metadata is flat in practice."""

_STRINGS: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS: Final = re.compile(r"[^\[\]{}]+")


class PayloadTooLarge(ClearhouseError):
    code = "payload_too_large"


def _depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (strings, which may hold brackets, aside)."""
    deepest = depth = 0
    for bracket in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


class _Repeated(dict[str, Any]):
    """An object that names ``key`` twice; found again in the decoded tree to say where."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


def _marking_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            return _Repeated(key)
        seen[key] = value
    return seen


def _first_repeat(value: Any, path: Field = ()) -> Field | None:
    """The path of the first key named twice (the inner object first, as decoded)."""
    if isinstance(value, _Repeated):
        return (*path, value.key)
    children: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    for step, child in children:
        if (found := _first_repeat(child, (*path, step))) is not None:
            return found
    return None


def check_json_body(body: bytes) -> None:
    """Refuse a body that is not one unambiguous JSON document (see the module's docstring)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the body is not UTF-8", field=()) from exc
    if _depth(text) > JSON_DEPTH_MAX:
        raise InvalidRequest(f"the body nests deeper than {JSON_DEPTH_MAX} levels", field=())
    try:
        tree = json.loads(text, object_pairs_hook=_marking_repeats)
        # The decoder Clearhouse reads bodies with: lone surrogates and the like end here too.
        msgspec.json.decode(body)
    except (ValueError, msgspec.DecodeError) as exc:
        raise InvalidRequest("the body is not valid JSON", field=()) from exc
    if (repeated := _first_repeat(tree)) is not None:
        raise InvalidRequest(
            f"the body names the key {repeated[-1]!r} more than once", field=repeated
        )


async def check_signed_body(request: Request[Any, Any, Any]) -> None:
    """The check of a signed route's body (a ``before_request`` hook of the partner routes)."""
    body = await request.body()
    if body:
        check_json_body(body)


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class JsonBodyMiddleware(ASGIMiddleware):
    """Checks every JSON body of every route before the route's handler or decoder sees it."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = SIGNED_ROUTE

    def __init__(self, body_max_bytes: int) -> None:
        self.body_max_bytes = body_max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        content_type = next(
            (v.decode("latin-1") for n, v in scope.get("headers", []) if n == b"content-type"),
            "",
        )
        if not is_json(content_type):
            await next_app(scope, receive, send)
            return
        body = await read_body(receive, self.body_max_bytes)
        if body:
            check_json_body(body)
        await next_app(scope, replaying(body, receive), send)


async def read_body(receive: Receive, body_max_bytes: int) -> bytes:
    """The whole request body, refused (``payload_too_large``) as soon as it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > body_max_bytes:
            raise PayloadTooLarge(f"bodies are limited to {body_max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (read already) once, then the real one."""
    delivered = False

    async def replay_body() -> ReceiveMessage:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return HTTPRequestEvent(type="http.request", body=body, more_body=False)

    return replay_body
