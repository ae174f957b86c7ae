"""Schema-driven fuzzing of every operation in the served OpenAPI document, in-process through
the ASGI app on a scratch PostgreSQL database, in three phases; in none may the server answer 5xx.

1. Unsigned and without a token (random fuzzing plus schemathesis's coverage cases: boundary
   values, wrong types, other methods and media types): a partner operation answers an RFC 9457
   problem in the 4xx range, and a well-formed request (positive generation) exactly
   ``401 missing_signature``: nothing unsigned gets past ``PartnerSignatureMiddleware``.
2. With an operator token, then with an auditor token: every operation.
3. Signed as a real partner (contract in force, key registered), with a fresh nonce and
   ``Idempotency-Key`` per request and the ``Data-Purpose`` the route serves (or another, or the
   generated one): every partner operation. A well-formed request is never refused for its
   signature, so the generated bodies reach the handlers.

In phases 2 and 3 path parameters, query parameters and top-level body fields are drawn either
as generated or, by name, from what exists in the database (the partner, its key, members,
entries, periods, a window of the disclosure log), so that requests get past "not found"; and
``Accept`` asks for JSON, CSV or the workbook, which some operations negotiate.

Each phase is bounded (``MAX_EXAMPLES`` per operation) and derandomized: a run makes the same
cases every time; Hypothesis runs under the suite's profile (no deadline, no too-slow health
check). A failure shows the check that failed, the response, a curl command of the request (a
signed one must be re-signed to be replayed: its nonce is spent), the case as sent and
``@reproduce_failure(...)``: put that on the test and select the operation (``-k``) to replay
exactly that case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import settings
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.errors import FailureGroup

from clearhouse.domain.purposes import Purpose
from clearhouse.services.access import Role
from tests.web.fuzzing import (
    Coalition,
    FuzzTarget,
    PartnerSignature,
    fuzz_target,
    served_document,
)

MAX_EXAMPLES: Final = {"unsigned": 25, "token": 30, "signed": 60}
SCHEMATHESIS_PHASES: Final = ("examples", "coverage", "fuzzing", "stateful")
SIGNATURE_CODES: Final = frozenset(
    {
        "missing_signature",
        "invalid_signature",
        "unknown_key",
        "stale_signature",
        "replayed_request",
        "digest_mismatch",
    }
)
PURPOSES_SERVED: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("POST", "/v1/transactions/issue"): ("accrual",),
    ("POST", "/v1/transactions/redeem"): ("redemption",),
    ("GET", "/v1/transactions"): ("settlement",),
    ("GET", "/v1/transactions/{entry_id}"): ("settlement",),
    ("GET", "/v1/statements/{period}"): ("settlement",),
    ("POST", "/v1/members"): ("enrolment",),
    ("PUT", "/v1/members/{member_id}/consents"): ("consent_management",),
    ("GET", "/v1/members/{member_id}"): tuple(p.value for p in Purpose),
}
"""The ``Data-Purpose`` each partner route serves (SPEC 4.1); a reversal, its original's."""
REVERSAL: Final = ("POST", "/v1/transactions/{entry_id}/reversals")
ACCEPTED_MEDIA: Final = (
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/json",
)

# Loaded at import, as ``@schema.parametrize()`` needs: ``schemathesis.pytest.from_fixture``
# fails under pytest 9 (it sets ``Node._nodeid``), so the document comes from a sandbox app of
# its own and every call names the fixture's app (``case.call(app=...)``).
DOCUMENT, PARTNER_OPERATIONS = served_document()


def fuzzing(phase: str, *, coverage: bool = False, **generation: Any) -> schemathesis.BaseSchema:
    """The served document under one phase's generation: random cases, positive and negative,
    derandomized; with ``coverage``, schemathesis's deterministic coverage cases as well."""
    enabled = {"fuzzing", "coverage"} if coverage else {"fuzzing"}
    config = {
        "warnings": False,
        "phases": {name: {"enabled": name in enabled} for name in SCHEMATHESIS_PHASES},
        "generation": {"max-examples": MAX_EXAMPLES[phase], "deterministic": True, **generation},
    }
    return schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(config))


unsigned = fuzzing(
    "unsigned",
    coverage=True,
    # Positive header values stay printable ASCII: the door refuses a control character (a tab)
    # in Data-Purpose with 400 before it looks for a signature (signatures.py, step 2).
    **{"exclude-header-characters": "\t\n\r"},
)
with_token = fuzzing("token")
signed = fuzzing("signed").include(
    lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in PARTNER_OPERATIONS
)


@pytest.fixture(scope="module")
def partners_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    """For the unsigned and the signed phase (an unsigned request writes nothing)."""
    with fuzz_target(tmp_path_factory.mktemp("partners-side")) as target:
        yield target


@pytest.fixture(scope="module")
def operators_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    """For the token phase, on a database of its own: operators move the clock, seal periods
    and revoke keys."""
    with fuzz_target(tmp_path_factory.mktemp("operators-side")) as target:
        yield target


def _is_positive(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _problem(response: schemathesis.Response) -> dict[str, Any]:
    """The RFC 9457 problem in ``response``, with a ``code`` and the response's ``status``."""
    content_type = next(
        (values[0] for name, values in response.headers.items() if name.lower() == "content-type"),
        None,
    )
    assert content_type == "application/problem+json", f"not a problem: {content_type}"
    body = response.json()
    assert isinstance(body, dict), "the problem is not a JSON object"
    assert isinstance(body.get("code"), str), "the problem has no code"
    assert body.get("status") == response.status_code, "the problem's status differs"
    return body


def refused_for_want_of_a_signature(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """An unsigned partner request ends at the door: a 4xx problem; ``401 missing_signature``
    when nothing else is wrong with it."""
    assert 400 <= response.status_code < 500, f"unsigned, yet {response.status_code}"
    problem = _problem(response)
    if _is_positive(case):
        assert (response.status_code, problem["code"]) == (401, "missing_signature")


def passes_the_signature_door(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """A well-formed request signed with the partner's valid key is not refused for its
    signature; were it, no generated body would reach a handler."""
    if _is_positive(case) and response.status_code == 401:
        assert _problem(response)["code"] not in SIGNATURE_CODES, "a good signature refused"


def validate(
    case: schemathesis.Case,
    response: schemathesis.Response,
    checks: list[CheckFunction],
    **kwargs: Any,
) -> None:
    """Run ``checks``; a failure is raised as an AssertionError, which keeps Hypothesis's notes
    (``@reproduce_failure``): schemathesis's pytest plugin strips those off its FailureGroup."""
    try:
        case.validate_response(response, checks=checks, **kwargs)
    except FailureGroup as failure:
        raise AssertionError(f"{failure.message}\nThe case as sent: {case!r}") from None


def point_at_known(case: schemathesis.Case, data: st.DataObject, coalition: Coalition) -> None:
    """Replace, by draw, path and query parameters and top-level body fields with values that
    exist, by name; the first choice, to which Hypothesis shrinks, keeps the generated one."""

    def drawn(name: str, generated: object) -> object:
        known = coalition.known(name)
        if not known:
            return generated
        choice = data.draw(st.sampled_from((None, *known)), label=f"known {name}")
        return generated if choice is None else choice

    if case.path_parameters:
        case.path_parameters = {n: drawn(n, v) for n, v in case.path_parameters.items()}
    if isinstance(case.query, dict):
        case.query = {n: drawn(n, v) for n, v in case.query.items()}
    if isinstance(case.body, dict):
        case.body = {n: drawn(n, v) for n, v in case.body.items()}


def negotiate(case: schemathesis.Case, data: st.DataObject) -> None:
    """``Accept`` as generated (none: JSON), or CSV, the workbook or JSON asked for."""
    accept = data.draw(st.sampled_from((None, *ACCEPTED_MEDIA)), label="Accept")
    if accept is not None:
        case.headers = {**(case.headers or {}), "Accept": accept}


def declare_purpose(case: schemathesis.Case, data: st.DataObject, coalition: Coalition) -> None:
    """The ``Data-Purpose`` the route serves (to which Hypothesis shrinks), the generated
    header (or none, where the document declares none), or another purpose."""
    operation = (case.method.upper(), case.path)
    if operation == REVERSAL:
        entry_id = str((case.path_parameters or {}).get("entry_id"))
        served: tuple[str, ...] = (coalition.entries.get(entry_id, "accrual"),)
    else:
        served = PURPOSES_SERVED.get(operation, ())
    others = tuple(p.value for p in Purpose if p.value not in served)
    # Half the time a purpose the route serves: most requests should get to the handler.
    routes = st.sampled_from(served) if served else st.nothing()
    choice = data.draw(routes | st.sampled_from((None, *others)), label="Data-Purpose")
    if choice is not None:
        case.headers = {**(case.headers or {}), "Data-Purpose": choice}


def unsigned_as_generated(case: schemathesis.Case) -> None:
    """The case without the signature the document asks for (generated, it would be a bogus
    one): the unsigned phase sends no signature at all."""
    if case.headers:
        case.headers = {
            name: value
            for name, value in case.headers.items()
            if name.lower() not in {"signature", "signature-input"}
        }


@unsigned.parametrize()
@settings(print_blob=True)
def test_unsigned_requests_never_fail_and_never_pass_the_partner_door(
    case: schemathesis.Case, partners_side: FuzzTarget
) -> None:
    unsigned_as_generated(case)
    response = case.call(app=partners_side.app)
    checks = [not_a_server_error]
    if (case.method.upper(), case.path) in PARTNER_OPERATIONS:
        checks.append(refused_for_want_of_a_signature)
    validate(case, response, checks)


def _with_token(
    case: schemathesis.Case, data: st.DataObject, target: FuzzTarget, role: Role
) -> None:
    point_at_known(case, data, target.coalition)
    negotiate(case, data)
    headers = {"Authorization": f"Bearer {target.coalition.tokens[role]}"}
    response = case.call(app=target.app, headers=headers)
    validate(case, response, [not_a_server_error], headers=headers)


@with_token.parametrize()
@with_token.given(data=st.data())
@settings(print_blob=True)
def test_no_operation_fails_with_an_operator_token(
    case: schemathesis.Case, data: st.DataObject, operators_side: FuzzTarget
) -> None:
    _with_token(case, data, operators_side, Role.OPERATOR)


@with_token.parametrize()
@with_token.given(data=st.data())
@settings(print_blob=True)
def test_no_operation_fails_with_an_auditor_token(
    case: schemathesis.Case, data: st.DataObject, operators_side: FuzzTarget
) -> None:
    _with_token(case, data, operators_side, Role.AUDITOR)


@signed.parametrize()
@signed.given(data=st.data())
@settings(print_blob=True)
def test_no_partner_operation_fails_when_signed_by_a_partner(
    case: schemathesis.Case, data: st.DataObject, partners_side: FuzzTarget
) -> None:
    coalition = partners_side.coalition
    point_at_known(case, data, coalition)
    negotiate(case, data)
    declare_purpose(case, data, coalition)
    signature = PartnerSignature(coalition.partner.key, partners_side.settings.public_base_url)
    response = case.call(app=partners_side.app, auth=signature)
    validate(case, response, [not_a_server_error, passes_the_signature_door])
