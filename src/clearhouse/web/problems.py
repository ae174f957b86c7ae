"""RFC 9457 problem responses: errors become problems here, with the status and title that
``clearhouse.web.problem_codes`` gives each code.

Every error leaves as ``application/problem+json`` with ``type`` (``/problems/<code>``),
``title``, ``status``, ``detail``, ``instance`` (the request id) and ``code``; a ``400
invalid_request`` also carries ``errors``, one ``{pointer, detail}`` per fault
(``clearhouse.web.bad_requests``). An unexpected exception is a 500 problem whose details go
to the log, never to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.types import ExceptionHandlersMap

from clearhouse.domain.errors import ClearhouseError, InvalidRequest, Unavailable
from clearhouse.web.bad_requests import RequestFault, as_json, domain_faults, http_faults, summary
from clearhouse.web.problem_codes import PROBLEMS
from clearhouse.web.request_id import request_id_of

log = structlog.get_logger("clearhouse.web")


_CODE_OF_STATUS: Final[Mapping[int, str]] = {
    400: "invalid_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}

RETRY_AFTER_S: Final = 2


class Problem(msgspec.Struct, frozen=True):
    """An RFC 9457 problem as Clearhouse sends it (for the OpenAPI document)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    errors: list[RequestFault] | None = None
    """Only on ``400 invalid_request``: each fault, where it lies (``pointer`` into the body or
    ``parameter``) and what is wrong."""


COMMON_PROBLEMS: Final = ("request_header_fields_too_large", "internal_error")
"""What any route can answer, whoever calls and whatever it does: the header limit stands in
front of every route (``web.limits``), and a defect is a 500 anywhere. Listed on every operation
by ``problem_responses`` rather than in each decorator."""

EXAMPLE_INSTANCE: Final = "urn:uuid:0b6f3c5e-8a51-4c1e-9d8e-2f4a7c9e1d20"


def problem_example(code: str) -> Example:
    """An example of the problem ``code`` as sent: the document shows, per response, exactly
    the codes it can carry, one example each."""
    status, title = PROBLEMS[code]
    value: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": title,
        "instance": EXAMPLE_INSTANCE,
        "code": code,
    }
    if code == "invalid_request":
        value["errors"] = [{"pointer": "#/points", "detail": "Expected `int`, got `str`"}]
    return Example(summary=f"{code}: {title}", value=value)


def problem_responses(*codes: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the problems an endpoint can answer with, grouped by status, one
    example per code; ``COMMON_PROBLEMS`` are added to every endpoint's."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys((*codes, *COMMON_PROBLEMS)):
        by_status.setdefault(PROBLEMS[code][0], []).append(code)
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type="application/problem+json",
            description="Problem: " + ", ".join(f"`{code}`" for code in group),
            examples=[problem_example(code) for code in group],
        )
        for status, group in sorted(by_status.items())
    }


def problem_exception(
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: Sequence[RequestFault] = (),
    extensions: dict[str, object] | None = None,
) -> ProblemDetailsException:
    status, title = PROBLEMS[code]
    extra: dict[str, Any] = {"code": code, **(extensions or {})}
    if errors:
        extra["errors"] = as_json(errors)
    return ProblemDetailsException(
        status_code=status,
        type_=f"/problems/{code}",
        title=title,
        detail=detail,
        headers=headers,
        extra=extra,
    )


def _from_domain(request: Request[Any, Any, Any], exc: ClearhouseError) -> ProblemDetailsException:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, Unavailable) else None
    errors: list[RequestFault] = []
    if exc.code == "invalid_request":
        invalid = exc if isinstance(exc, InvalidRequest) else InvalidRequest(exc.detail)
        errors = domain_faults(request, invalid)
    return problem_exception(
        exc.code, exc.detail, headers=headers, errors=errors, extensions=exc.extensions()
    )


def _from_http(request: Request[Any, Any, Any], exc: HTTPException) -> ProblemDetailsException:
    if isinstance(exc, ProblemDetailsException):
        return exc
    code = _CODE_OF_STATUS.get(exc.status_code, "internal_error")
    if exc.status_code >= 500:
        return problem_exception(code, "the request failed; quote the instance id to support")
    if code == "invalid_request":
        faults = http_faults(request, exc)
        return problem_exception(code, summary(faults), headers=exc.headers, errors=faults)
    return problem_exception(code, str(exc.detail), headers=exc.headers)


def render_problem(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    request_id = request_id_of(request.scope)
    exc.instance = request_id
    response = exc.to_response(request)
    response.headers["X-Request-Id"] = request_id
    return response


def render_domain_error(request: Request[Any, Any, Any], exc: ClearhouseError) -> Response[Any]:
    problem = _from_domain(request, exc)
    if problem.status_code >= 500 and not isinstance(exc, Unavailable):
        # A defect (the database refused what the domain let through): the log must have it.
        log.error(
            "internal domain error",
            request_id=request_id_of(request.scope),
            error_type=type(exc).__name__,
            exc_info=exc,
        )
    return render_problem(request, problem)


def render_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return render_problem(request, _from_http(request, exc))


def render_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    request_id = request_id_of(request.scope)
    log.error(
        "unexpected error", request_id=request_id, error_type=type(exc).__name__, exc_info=exc
    )
    return render_problem(
        request, problem_exception("internal_error", "the request failed; quote the instance id")
    )


def problem_plugin() -> ProblemDetailsPlugin:
    """Renders ``ProblemDetailsException``; ``exception_handlers`` turns every other HTTP and
    domain exception into one, so that each problem carries its ``code`` and request id."""
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_handler=render_problem))


def exception_handlers() -> ExceptionHandlersMap:
    return {
        ProblemDetailsException: render_problem,
        ClearhouseError: render_domain_error,
        HTTPException: render_http_error,
        Exception: render_unexpected,
    }


def problem_of(request: Request[Any, Any, Any], exc: Exception) -> ProblemDetailsException:
    """The problem any exception answers with, as the API's responses carry it (the console
    shows the same status, code and detail on a page)."""
    if isinstance(exc, ClearhouseError):
        return _from_domain(request, exc)
    if isinstance(exc, HTTPException):
        return _from_http(request, exc)
    log.error(
        "unexpected error",
        request_id=request_id_of(request.scope),
        error_type=type(exc).__name__,
        exc_info=exc,
    )
    return problem_exception("internal_error", "the request failed; quote the instance id")
