"""What a ``400 invalid_request`` says, in one voice, wherever the fault was found.

Besides ``detail``, every such problem carries ``errors``: one ``{pointer, detail}`` per fault,
as in RFC 9457 section 3. Where the fault lies is said in one of two ways:

- in the body, ``pointer``: a JSON Pointer (RFC 6901) in its URI fragment form, ``#/points``,
  ``#/metadata/basket/0/sku``; ``#`` is the whole body (not JSON, not UTF-8, too deep);
- in a query, path or header parameter, ``parameter``: its name as the OpenAPI document
  spells it (``limit``, ``from``, ``Idempotency-Key``). The request's URL and headers are not a
  JSON document, so no pointer is made up for them.

A fault whose place is not known carries ``detail`` alone. The faults come from four places,
each translated here into the same words: Litestar's decoding of parameters and bodies
(``ValidationException``), the strict decoding of bodies (msgspec's ``DecodeError``, whose
message ends in ``- at `$.points` ``), the checks of raw JSON bodies (``web.bodies``) and the
domain (``InvalidRequest.field``: a name the request carries as a parameter is that parameter,
any other name or path a place in the body).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException

from clearhouse.domain.errors import Field, InvalidRequest

_AT: Final = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_PATH_STEP: Final = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>[0-9]+)\]|\[\.\.\.\]")
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<name>.*)`$")
_MISSING: Final = re.compile(r"^Object missing required field `(?P<name>.*)`$")
_WRONG_TYPE: Final = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_BOUND: Final = re.compile(
    r"^Expected `(?P<type>[^`]+)`(?: of length)? (?P<op>[<>]=?) (?P<n>-?\d+)$"
)
_PATTERN: Final = re.compile(r"^Expected `str` matching regex '(?P<regex>.*)'$")
_MISSING_PARAMETER: Final = re.compile(r"^Missing required \w+ parameter '(?P<name>[^']+)'")
_FRAGMENT_SAFE: Final = "!$&'()*+,;=:@/?-._~"
"""What RFC 3986 lets a fragment hold unencoded (besides letters and digits)."""

_KINDS: Final[Mapping[str, str]] = {
    "int": "a whole number",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "null": "null",
    "object": "an object",
    "array": "an array",
}
_FORMATS: Final[Mapping[str, str]] = {
    "Invalid RFC3339 encoded datetime": "must be an RFC 3339 time, such as 2026-11-03T10:15:00Z",
    "Invalid RFC3339 encoded date": "must be a date, YYYY-MM-DD",
    "Invalid UUID": "must be a UUID",
    "Invalid base64 encoded string": "must be base64",
    "Number out of range": "is out of range",
}
_BOUND_WORDS: Final[Mapping[str, str]] = {
    ">=": "at least",
    ">": "more than",
    "<=": "at most",
    "<": "less than",
}


class RequestFault(msgspec.Struct, frozen=True, omit_defaults=True):
    """One fault of a bad request: where it lies (``pointer`` or ``parameter``) and what is
    wrong."""

    detail: str
    pointer: str | None = None
    """A JSON Pointer into the body, URI fragment form (RFC 6901 section 6): ``#/points``."""
    parameter: str | None = None
    """The query, path or header parameter at fault: ``limit``, ``Idempotency-Key``."""


def json_pointer(path: Field) -> str:
    """``("metadata", "basket", 0)`` as ``#/metadata/basket/0``; ``()`` as ``#``."""
    steps = (str(step).replace("~", "~0").replace("/", "~1") for step in path)
    return "#" + "".join("/" + quote(step, safe=_FRAGMENT_SAFE) for step in steps)


def _name_of(path: Field) -> str:
    return "/".join(str(step) for step in path) if path else "the body"


def _kinds(spelled: str) -> str:
    kinds = [_KINDS.get(kind.strip(), kind.strip()) for kind in spelled.split("|")]
    return " or ".join(kinds)


def _bound_in_words(kind: str, op: str, n: int) -> str:
    if kind == "int":
        return f"must be {_BOUND_WORDS[op]} {n}"
    if (op, n) == (">=", 1):
        return "must not be empty"
    unit = "characters" if kind == "str" else "items"
    return f"must hold {_BOUND_WORDS[op]} {n} {unit}"


def _in_our_words(message: str, name: str) -> str:
    """msgspec's message about the value called ``name``, as Clearhouse says it."""
    if wrong := _WRONG_TYPE.match(message):
        return f"{name} must be {_kinds(wrong['expected'])}, not {_kinds(wrong['got'])}"
    if bound := _BOUND.match(message):
        return f"{name} {_bound_in_words(bound['type'], bound['op'], int(bound['n']))}"
    if pattern := _PATTERN.match(message):
        return f"{name} must match {pattern['regex']}"
    if message in _FORMATS:
        return f"{name} {_FORMATS[message]}"
    return f"{name} does not fit: {message[:1].lower()}{message[1:]}"


def _path_of(spelled: str) -> Field:
    """msgspec's ``$.metadata.basket[0]`` (without ``$``) as a path; a dict's key, which
    msgspec writes ``[...]``, is not known, so the path ends at the dict."""
    path: list[str | int] = []
    for step in _PATH_STEP.finditer(spelled):
        if step["key"] is not None:
            path.append(step["key"])
        elif step["index"] is not None:
            path.append(int(step["index"]))
        else:
            break
    return tuple(path)


def body_fault(message: str, path: Field = ()) -> tuple[str, Field]:
    """What a msgspec decoding message says of the value at ``path`` in the body, and where
    (a field it lacks or does not know is the place itself)."""
    if at := _AT.match(message):
        message, path = at["message"], path + _path_of(at["path"])
    if unknown := _UNKNOWN.match(message):
        field = (*path, unknown["name"])
        return f"{_name_of(field)} is not a field here", field
    if missing := _MISSING.match(message):
        field = (*path, missing["name"])
        return f"{_name_of(field)} is required", field
    return _in_our_words(message, _name_of(path)), path


def refused_body(exc: msgspec.DecodeError) -> InvalidRequest:
    """A strict decoding's refusal as an ``InvalidRequest`` naming the place in the body."""
    if not isinstance(exc, msgspec.ValidationError):
        return InvalidRequest("the body is not valid JSON", field=())
    detail, field = body_fault(str(exc))
    return InvalidRequest(detail, field=field)


def _parameter_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a handler's argument ``key`` has in the request (``start`` is ``from``)."""
    try:
        kwarg = request.route_handler.parsed_fn_signature.parameters[key].kwarg_definition
    except (AttributeError, KeyError):
        return key
    for alias in ("name", "query", "header", "cookie"):
        if name := getattr(kwarg, alias, None):
            return str(name)
    return key


def _is_parameter(request: Request[Any, Any, Any], name: str) -> bool:
    return name in request.query_params or name in request.path_params or name in request.headers


def _has_body(request: Request[Any, Any, Any]) -> bool:
    length = request.headers.get("content-length", "0")
    return length != "0" or "transfer-encoding" in request.headers


def domain_faults(request: Request[Any, Any, Any], exc: InvalidRequest) -> list[RequestFault]:
    """The fault the domain (or a web check) named: a name the request carries as a query,
    path or header parameter is that parameter; any other name or path lies in the body."""
    field = exc.field
    if field is None:
        return [RequestFault(exc.detail, json_pointer(()) if _has_body(request) else None)]
    if len(field) == 1 and isinstance(field[0], str) and _is_parameter(request, field[0]):
        return [RequestFault(exc.detail, parameter=field[0])]
    return [RequestFault(exc.detail, json_pointer(field))]


def validation_faults(
    request: Request[Any, Any, Any], exc: ValidationException
) -> list[RequestFault]:
    """Litestar's refusal of a parameter or a body, fault by fault."""
    faults: list[RequestFault] = []
    for error in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(error, Mapping):
            continue
        message, key = str(error.get("message", "")), str(error.get("key", ""))
        if error.get("source") == "body" or not key:
            detail, field = body_fault(message, () if key in ("", "data") else _path_of("." + key))
            faults.append(RequestFault(detail, json_pointer(field)))
        else:
            name = _parameter_name(request, key)
            faults.append(RequestFault(_in_our_words(message, name), parameter=name))
    return faults


def http_faults(request: Request[Any, Any, Any], exc: HTTPException) -> list[RequestFault]:
    """The faults of a 400 that Litestar raised itself."""
    if isinstance(exc, ValidationException) and (faults := validation_faults(request, exc)):
        return faults
    detail = str(exc.detail)
    if missing := _MISSING_PARAMETER.match(detail):
        return [RequestFault(f"{missing['name']} is required", parameter=missing["name"])]
    if _has_body(request):
        return [RequestFault("the body is not one JSON document", json_pointer(()))]
    return [RequestFault("this request needs a JSON body", json_pointer(()))]


def summary(faults: Sequence[RequestFault]) -> str:
    """The problem's ``detail``: the faults' own, joined."""
    return "; ".join(fault.detail for fault in faults)


def as_json(faults: Sequence[RequestFault]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(fault) for fault in faults]
