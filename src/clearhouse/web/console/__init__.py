"""The operator's and auditor's console: server-rendered pages (Jinja, HTMX for partial
updates) inside the same app, with its assets shipped in the package and nothing from elsewhere.

Every console response forbids framing and caching and allows scripts, styles and images from
this origin only; refusals are pages (with the problem's code and request id), and a request
without a live session goes to the sign-in page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response, Router
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from clearhouse.domain.errors import ClearhouseError
from clearhouse.web.console.screens import ConsoleController, SignInController
from clearhouse.web.console.sessions import NotSignedIn
from clearhouse.web.problems import problem_of
from clearhouse.web.request_id import request_id_of

HERE: Final = Path(__file__).parent
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def console_templates() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja with autoescaping on for every template: whatever a partner sent (a legal name, a
    reference) is text in the page, never markup."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.filters["money"] = lambda d: f"{d:,.2f}"
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A refusal as a page: a request without a session is sent to sign in (HTMX is told to go
    there itself); any other problem keeps its status and code."""
    if isinstance(exc, NotSignedIn):
        if request.headers.get("hx-request"):
            return Response(b"", status_code=401, headers={"HX-Redirect": "/console/sign-in"})
        return Redirect("/console/sign-in", status_code=303)
    problem = problem_of(request, exc)
    return Template(
        template_name="problem.html",
        context={
            "status": problem.status_code,
            "title": problem.title,
            "detail": problem.detail,
            "code": problem.extra.get("code") if isinstance(problem.extra, dict) else None,
            "instance": request_id_of(request.scope),
        },
        status_code=problem.status_code,
    )


def _secure(response: Response[Any]) -> Response[Any]:
    response.headers.update(SECURITY_HEADERS)
    return response


def console_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            SignInController,
            ConsoleController,
            create_static_files_router(
                path="/console/static", directories=[HERE / "static"], name="console_static"
            ),
        ],
        include_in_schema=False,
        exception_handlers={
            ClearhouseError: _refused,
            HTTPException: _refused,
            Exception: _refused,
        },
        after_request=_secure,
    )
