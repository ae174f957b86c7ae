"""Every problem the test suite receives from an app, by operation: ``(METHOD, route template,
code)``, for ``test_problem_codes_documented`` to compare with what the OpenAPI document says.

It wraps ``Litestar.__call__`` for the whole run rather than one factory, so that every app a
test builds (``create_app`` through the harness, the fuzzing target, the limits tests, an app
behind ``without_websockets``) is seen, however the test reaches it. The route template is the
one Litestar routed to (``scope["path_template"]``, as the document writes paths); a request
that matched no route (404 or 405 from routing itself) has none and is not an operation's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Final

import msgspec
from litestar import Litestar
from litestar.types import Message, Receive, Scope, Send

PROBLEM_JSON: Final = b"application/problem+json"

Received = tuple[str, str, str]
"""``(METHOD, /path/{template}, code)``."""

RECEIVED: Final[Counter[Received]] = Counter()

AppCall = Callable[[Litestar, Scope, Receive, Send], Coroutine[Any, Any, None]]


def _problem_code(start: Message | None, chunks: list[bytes]) -> str | None:
    if start is None:
        return None
    headers = dict(start.get("headers", []))
    if not headers.get(b"content-type", b"").startswith(PROBLEM_JSON):
        return None
    try:
        code = msgspec.json.decode(b"".join(chunks)).get("code")
    except (msgspec.DecodeError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def recording(call: AppCall) -> AppCall:
    """``call``, recording the problem each HTTP answer carries."""

    async def recorded(app: Litestar, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await call(app, scope, receive, send)
            return
        start: list[Message] = []
        chunks: list[bytes] = []

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.append(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await call(app, scope, receive, watching)
        finally:
            code = _problem_code(start[0] if start else None, chunks)
            template = scope.get("path_template")
            if code is not None and template:
                RECEIVED[(str(scope["method"]), str(template), code)] += 1

    return recorded


def install() -> Callable[[], None]:
    """Record from now on in every Litestar app; the function returned stops it."""
    original: AppCall = Litestar.__call__
    Litestar.__call__ = recording(original)  # type: ignore[method-assign]

    def uninstall() -> None:
        Litestar.__call__ = original  # type: ignore[method-assign]

    return uninstall
