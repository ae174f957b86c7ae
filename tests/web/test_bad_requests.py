"""One voice for bad requests: every ``400 invalid_request`` names each fault's place.

Whether Litestar's decoding, the strict body decoding, the raw JSON checks or the domain found
the fault, the problem carries ``errors``: ``[{"detail": ..., "pointer": "#/points"}]`` for a
place in the body (a JSON Pointer in URI fragment form, RFC 9457 section 3's shape), or
``[{"detail": ..., "parameter": "limit"}]`` for a query, path or header parameter.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import unquote

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from tests.web.harness import OCCURRED_AT, Partner, SignedApi, assert_problem

JSON_POINTER: Final = re.compile(r"#(?:/(?:[^/~]|~[01])*)*")
"""RFC 6901's syntax, fragment form (after percent-decoding)."""


def _issue_body(member: str, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "member_id": member,
        "points": 5,
        "occurred_at": OCCURRED_AT,
        "reference": "receipt 4711",
    }
    body.update(fields)
    return body


async def _refused_issue(api: SignedApi, partner: Partner, body: object) -> dict[str, Any]:
    request = api.points("issue", partner, "unused", 0, body=body)
    return await api.refused(request, 400, "invalid_request")


# --- the signed API --------------------------------------------------------------------------


async def test_an_unknown_field_is_named_by_its_pointer(
    api: SignedApi, partner: Partner, member: str
) -> None:
    problem = await _refused_issue(api, partner, _issue_body(member, colour="red"))
    assert problem["errors"] == [{"detail": "colour is not a field here", "pointer": "#/colour"}]
    assert problem["detail"] == "colour is not a field here"


@pytest.mark.parametrize("points", ["5", "five"], ids=["numeric-string", "word"])
async def test_a_string_for_points_is_named_by_its_pointer(
    api: SignedApi, partner: Partner, member: str, points: str
) -> None:
    """ "5" passes Litestar's lenient decoding and is refused by the strict one; "five" is
    refused by Litestar's: both answer the same."""
    problem = await _refused_issue(api, partner, _issue_body(member, points=points))
    assert problem["errors"] == [
        {"detail": "points must be a whole number, not a string", "pointer": "#/points"}
    ]


async def test_a_missing_reference_is_named_by_its_pointer(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = _issue_body(member)
    del body["reference"]
    problem = await _refused_issue(api, partner, body)
    assert problem["errors"] == [{"detail": "reference is required", "pointer": "#/reference"}]


async def test_a_malformed_occurred_at_is_named_by_its_pointer(
    api: SignedApi, partner: Partner, member: str
) -> None:
    problem = await _refused_issue(api, partner, _issue_body(member, occurred_at="yesterday"))
    assert problem["errors"] == [
        {
            "detail": "occurred_at must be an RFC 3339 time, such as 2026-11-03T10:15:00Z",
            "pointer": "#/occurred_at",
        }
    ]


async def test_a_member_id_with_a_space_is_named_by_its_pointer(
    api: SignedApi, partner: Partner
) -> None:
    """The domain's own check names the field; the web writes it as a pointer."""
    problem = await _refused_issue(api, partner, _issue_body("jana nowak"))
    [fault] = problem["errors"]
    assert fault["pointer"] == "#/member_id"
    assert fault["detail"] == problem["detail"]
    assert fault["detail"].startswith("member_id may hold only printable ASCII")


async def test_a_duplicate_key_is_named_by_its_pointer(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = (
        f'{{"member_id":"{member}","points":1,"occurred_at":"{OCCURRED_AT}",'
        '"reference":"r1","points":1000}'
    ).encode()
    problem = await _refused_issue(api, partner, body)
    assert problem["errors"] == [
        {"detail": "the body names the key 'points' more than once", "pointer": "#/points"}
    ]


async def test_a_duplicate_key_deep_inside_metadata_is_named_where_it_is(
    api: SignedApi, partner: Partner, member: str
) -> None:
    body = (
        f'{{"member_id":"{member}","points":1,"occurred_at":"{OCCURRED_AT}",'
        '"reference":"r1","metadata":{"basket":[{"sku":"a"},{"sku":"a","sku":"b"}]}}'
    ).encode()
    problem = await _refused_issue(api, partner, body)
    assert [fault["pointer"] for fault in problem["errors"]] == ["#/metadata/basket/1/sku"]


async def test_a_body_that_is_not_json_points_at_the_whole_body(
    api: SignedApi, partner: Partner
) -> None:
    problem = await _refused_issue(api, partner, b'{"points": ')
    assert problem["errors"] == [{"detail": "the body is not valid JSON", "pointer": "#"}]


async def test_a_bad_query_parameter_is_named_as_a_parameter(
    api: SignedApi, partner: Partner
) -> None:
    request = api.request(
        "GET", "/v1/transactions", partner, params={"period": "2026-11", "limit": "abc"}
    )
    problem = await api.refused(request, 400, "invalid_request")
    assert problem["errors"] == [
        {"detail": "limit must be a whole number, not a string", "parameter": "limit"}
    ]


async def test_a_query_parameter_out_of_range_is_named_as_a_parameter(
    api: SignedApi, partner: Partner
) -> None:
    request = api.request(
        "GET", "/v1/transactions", partner, params={"period": "2026-11", "limit": 0}
    )
    problem = await api.refused(request, 400, "invalid_request")
    assert problem["errors"] == [{"detail": "limit must be at least 1", "parameter": "limit"}]


# --- the operator and auditor APIs -----------------------------------------------------------


async def test_an_operator_body_s_bad_id_is_named_by_its_pointer(
    api: SignedApi, operator: dict[str, str]
) -> None:
    response = await api.client.post(
        "/v1/admin/partners",
        json={"partner_id": "a partner", "legal_name": "A Partner Ltd"},
        headers=operator,
    )
    problem = assert_problem(response, 400, "invalid_request")
    [fault] = problem["errors"]
    assert fault["pointer"] == "#/partner_id"
    assert fault["detail"].startswith("partner_id may hold only printable ASCII")


async def test_an_operator_body_s_unknown_field_is_named_by_its_pointer(
    api: SignedApi, operator: dict[str, str]
) -> None:
    response = await api.client.post(
        "/v1/admin/partners",
        json={"partner_id": "p-1", "legal_name": "P", "colour": "red"},
        headers=operator,
    )
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["errors"] == [{"detail": "colour is not a field here", "pointer": "#/colour"}]


async def test_a_bad_time_in_the_disclosure_log_query_is_named_as_a_parameter(
    api: SignedApi, operator: dict[str, str]
) -> None:
    response = await api.client.get(
        "/v1/audit/disclosures",
        params={"from": "x", "to": "2026-12-01T00:00:00Z"},
        headers=operator,
    )
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["errors"] == [{"detail": "from must be an RFC 3339 time", "parameter": "from"}]


# --- a property over wrong-typed issue bodies --------------------------------------------------

_TEXT: Final = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=8)
_NOT_A_STRING: Final = st.one_of(
    st.none(), st.booleans(), st.integers(), st.lists(st.integers(), max_size=2), st.just({})
)
_NOT_AN_INTEGER: Final = st.one_of(
    st.none(),
    st.booleans(),
    _TEXT,
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(_TEXT, st.integers(), max_size=2),
)
_WRONG: Final = {
    "member_id": _NOT_A_STRING,
    "points": _NOT_AN_INTEGER,
    "occurred_at": _NOT_A_STRING,
    "reference": _NOT_A_STRING,
    "metadata": st.one_of(st.booleans(), st.integers(), _TEXT, st.lists(st.integers())),
}


@st.composite
def _wrong_typed(draw: st.DrawFn) -> tuple[dict[str, object], frozenset[str]]:
    """A valid issue body but for one or more fields of the wrong type; which ones."""
    broken = draw(st.sets(st.sampled_from(sorted(_WRONG)), min_size=1))
    body: dict[str, object] = _issue_body("m-unused", metadata={"till": 4})
    for name in broken:
        body[name] = draw(_WRONG[name])
    return body, frozenset(broken)


def _resolves(body: object, pointer: str) -> bool:
    for step in pointer.removeprefix("#").split("/")[1:]:
        key = step.replace("~1", "/").replace("~0", "~")
        if isinstance(body, dict) and key in body:
            body = body[key]
        elif isinstance(body, list) and key.isdigit() and int(key) < len(body):
            body = body[int(key)]
        else:
            return False
    return True


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_wrong_typed())
async def test_a_wrong_typed_issue_body_always_names_valid_pointers_into_it(
    api: SignedApi, partner: Partner, case: tuple[dict[str, object], frozenset[str]]
) -> None:
    body, broken = case
    response = await api.send(api.points("issue", partner, "unused", 0, body=body))
    problem = assert_problem(response, 400, "invalid_request")
    assert problem["errors"], problem
    for fault in problem["errors"]:
        assert set(fault) == {"detail", "pointer"}, fault
        assert fault["detail"]
        pointer = unquote(fault["pointer"])
        assert JSON_POINTER.fullmatch(pointer), pointer
        assert _resolves(body, pointer), (pointer, body)
        assert pointer.split("/")[1] in broken, (pointer, broken)


async def test_an_empty_idempotency_key_is_named_as_a_header_parameter(
    api: SignedApi, partner: Partner, member: str
) -> None:
    request = api.points("issue", partner, member, 5, idempotency_key="")
    problem = await api.refused(request, 400, "invalid_request")
    assert problem["errors"] == [
        {"detail": "Idempotency-Key must not be empty", "parameter": "Idempotency-Key"}
    ]
