"""Who is signed in to the console, and the checks every console request passes.

A session is a cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` and ``__Host-`` outside a
sandbox, which is served over plain HTTP on loopback) whose secret the database knows only as a
SHA-256. Every form and every HTMX request that changes something carries the session's CSRF
token (a form field, or the ``X-CSRF-Token`` header HTMX sends); a missing or wrong one is
``403 csrf_failed`` before anything else is looked at. Sign-in has no session yet: its form
carries a token that must equal a short-lived cookie of its own (double submit), so a page on
another site cannot sign a browser in to someone else's session either.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Final

from litestar import Request
from litestar.datastructures import Cookie

from clearhouse.config import Settings
from clearhouse.domain.errors import ClearhouseError, Forbidden
from clearhouse.domain.records import SessionHolder
from clearhouse.services import console as sessions

CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
SIGN_IN_COOKIE_S: Final = 600
_HOLDER: Final = "console_holder"


class CsrfFailed(ClearhouseError):
    code = "csrf_failed"


class NotSignedIn(ClearhouseError):
    """No live session: the console answers with the sign-in page (a redirect)."""

    code = "invalid_token"


def cookie_name(settings: Settings, name: str = "console") -> str:
    """``__Host-`` binds the cookie to this origin, but needs ``Secure``: not in a sandbox."""
    return f"clearhouse_{name}" if settings.sandbox else f"__Host-clearhouse_{name}"


def cookie(settings: Settings, value: str, max_age: int, name: str = "console") -> Cookie:
    return Cookie(
        key=cookie_name(settings, name),
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=not settings.sandbox,
        samesite="strict",
    )


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_secret(request: Request[Any, Any, Any]) -> str:
    return request.cookies.get(cookie_name(_settings(request)), "")


async def holder(request: Request[Any, Any, Any]) -> SessionHolder:
    """The signed-in holder (``NotSignedIn`` otherwise), looked up once per request."""
    state = request.scope.setdefault("state", {})
    found = state.get(_HOLDER)
    if found is None:
        found = await sessions.session_holder(request.app.state.database, session_secret(request))
        if found is None:
            raise NotSignedIn("sign in to the console")
        state[_HOLDER] = found
    assert isinstance(found, SessionHolder)
    return found


def same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def checked_form(
    request: Request[Any, Any, Any], *, operator: bool = True
) -> tuple[SessionHolder, dict[str, str]]:
    """The holder and the form of a request that changes something: signed in, the session's
    CSRF token (checked first), and an operator (auditors read only)."""
    signed_in = await holder(request)
    form = await form_of(request)
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not same(given, signed_in.csrf_token):
        raise CsrfFailed("the form's CSRF token is missing or is not this session's")
    if operator and not sessions.is_operator(signed_in):
        raise Forbidden("auditors read; only an operator may do this")
    return signed_in, form


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(32)
