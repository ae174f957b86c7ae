"""The signature bases written by ``clearhouse.crypto.signature_base`` are the package's.

``http-message-signatures`` is the oracle, through its public verifier: a signature made over
our base verifies with the package only if the package builds the very same base, and the
covered components it returns, joined, are compared with ours byte for byte. Where our code
declines a shape (None), the server asks the package; it must never answer a different base.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.crypto.http_signatures import (
    HeaderFields,
    RequestMessage,
    ResponseMessage,
    sign_message,
)
from clearhouse.crypto.signature_base import (
    inner_list_text,
    request_signature_base,
    sign_receipt,
)

KEY = Ed25519PrivateKey.generate()
KEY_ID = "partner-key-1"
LABEL = "sig1"
NOW = int(datetime.now(UTC).timestamp())
"""Signatures are made now (the package checks ``created`` and ``expires`` against its clock)."""

FIELD_NAMES = [
    "content-type",
    "content-digest",
    "idempotency-key",
    "data-purpose",
    "accept",
    "x-trace",
]


def _cased(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), name.title()])


plain_values = st.text(alphabet="abcXYZ019 =;,:/\"'-_", max_size=16)
odd_values = st.lists(
    st.sampled_from([*"ab =;,:\t", "  ", "\t\t", "\x00", "\x1f", "\x7f", "é", "\r\n "]),
    max_size=10,
).map("".join)
whitespace = st.sampled_from(["", " ", "  ", "\t", " \t "])
field_values = st.builds(
    lambda before, value, after: before + value + after,
    whitespace,
    plain_values | odd_values,
    whitespace,
)
field_lines = st.lists(
    st.tuples(st.sampled_from(FIELD_NAMES).flatmap(_cased), field_values), max_size=8
)

segments = st.lists(st.sampled_from([*"az09-._~!$&'()*+,;=:@", "%2F", "%7e"]), max_size=8).map(
    "".join
)
odd_segments = st.sampled_from(["%zz", " ", "é", "a b", "%", "[", "]", "|"])
paths = st.lists(segments | odd_segments, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
queries = st.sampled_from(
    ["", "?", "?a=1", "?a=1&a=2", "?a=1&a=2&a=3", "?x=%20&y", "?q=a/b?c", "?k=%zz", "?k=é", "?#f"]
) | st.text(alphabet="ab=&%20?", max_size=8).map(lambda q: "?" + q)
origins = st.sampled_from(
    [
        "https://points.example.test",
        "https://Points.Example.TEST",
        "http://points.example.test:8000",
        "https://points.example.test:",
        "HTTPS://points.example.test",
        "https://127.0.0.1",
        "https://[::1]:8443",
        "https://a%41.test",
        "https://user@points.example.test",
        "https://points.example.test",
    ]
)
urls = st.builds(lambda origin, path, query: origin + path + query, origins, paths, queries)
urls |= st.sampled_from(["https://points.example.test", "https://points.example.test?a=1"])
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "post"])

COMPONENTS = [
    '"@method"',
    '"@target-uri"',
    *(f'"{name}"' for name in FIELD_NAMES),
    '"absent-field"',
]
ODD_COMPONENTS = [
    '"@path"',
    '"@query"',
    '"@authority"',
    '"@scheme"',
    '"@request-target"',
    '"@query-param";name="a"',
    '"Content-Type"',
    "content-type",
    '"content-digest";sf',
    '"content-digest";key="sha-256"',
    '"accept";bs',
    '"@method";req',
]
profile_components = st.lists(st.sampled_from(COMPONENTS), unique=True, max_size=len(COMPONENTS))
any_components = st.lists(st.sampled_from(COMPONENTS + ODD_COMPONENTS), max_size=8)


@st.composite
def signature_params(draw: st.DrawFn, *, odd: bool) -> str:
    """The parameters after the inner list, in any order; ``odd`` adds what a partner may not
    send (a tag, an unknown name, a wrongly typed value)."""
    now = NOW
    chosen: dict[str, str] = {
        "created": str(draw(st.integers(now - 100, now + 100))),
        "keyid": http_sf.ser(KEY_ID),
        "nonce": http_sf.ser(draw(st.text(alphabet="abcXYZ019-_", min_size=16, max_size=20))),
    }
    if draw(st.booleans()):
        chosen["alg"] = '"ed25519"'
    if draw(st.booleans()):
        chosen["expires"] = str(now + draw(st.integers(60, 600)))
    if odd:
        extra = draw(
            st.sampled_from([{}, {"tag": '"app"'}, {"foo": "1"}, {"created": "?1"}, {"nonce": "7"}])
        )
        chosen.update(extra)
    order = draw(st.permutations(list(chosen)))
    return "".join(f";{name}={chosen[name]}" for name in order)


def _library_base(method: str, url: str, fields: list[tuple[str, str]], base: str) -> str:
    """The base the package builds for the request signed over ``base``; InvalidSignature when
    the package does not build that very base."""
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={KEY_ID: KEY.public_key()}, private_keys={}),
    )
    verifier.max_clock_skew = timedelta(days=1)
    signature = http_sf.ser({LABEL: (KEY.sign(base.encode()), {})})
    message = RequestMessage(method, url, HeaderFields([*fields, ("Signature", signature)]))
    (result,) = verifier.verify(message, max_age=None)
    return "\n".join(f"{name}: {value}" for name, value in result.covered_components.items())


def _fast_base(
    method: str, url: str, fields: list[tuple[str, str]], components: list[str], params: str
) -> tuple[str | None, list[tuple[str, str]]]:
    """Our base, over the components and parameters as the server parses them."""
    signature_input = f"{LABEL}=({' '.join(components)}){params}"
    parsed = http_sf.parse(signature_input.encode(), tltype="dictionary")
    assert isinstance(parsed, dict)
    covered, parsed_params = parsed[LABEL]
    lines = [*fields, ("Signature-Input", signature_input)]
    return request_signature_base(method, url, lines, covered, parsed_params), lines


def _check(
    method: str, url: str, fields: list[tuple[str, str]], components: list[str], params: str
) -> str | None:
    base, lines = _fast_base(method, url, fields, components, params)
    if base is not None:
        assert _library_base(method, url, lines, base) == base
    return base


@given(methods, urls, field_lines, any_components, signature_params(odd=True))
def test_every_base_written_here_is_the_packages_byte_for_byte(
    method: str, url: str, fields: list[tuple[str, str]], components: list[str], params: str
) -> None:
    _check(method, url, fields, components, params)


@given(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    st.builds(
        lambda path, query: "https://points.example.test" + path + query,
        paths.filter(lambda p: "%" not in p.replace("%2F", "").replace("%7e", "")),
        st.sampled_from(["", "?", "?a=1", "?a=1&a=2", "?period=2026-11&limit=100&limit=5"]),
    ).filter(lambda u: all(c not in u for c in " é[]|")),
    st.lists(
        st.tuples(
            st.sampled_from(FIELD_NAMES).flatmap(_cased),
            st.builds(
                lambda before, value, after: before + value + after,
                whitespace,
                plain_values,
                whitespace,
            ),
        ),
        max_size=8,
    ),
    profile_components,
    signature_params(odd=False),
)
def test_the_requests_partners_send_take_the_fast_path(
    method: str, url: str, fields: list[tuple[str, str]], components: list[str], params: str
) -> None:
    """Methods, paths with queries and repeated parameters, covered components in any order,
    header values with spaces and tabs around and inside them, repeated lines: all written
    here, none left to the package."""
    present = {name.lower() for name, _ in fields} | {"signature-input"}
    components = [c for c in components if c.strip('"').startswith("@") or c.strip('"') in present]
    assert _check(method, url, fields, components, params) is not None


def test_a_folded_or_controlled_value_is_left_to_the_package() -> None:
    params = ';created=1700000000;keyid="partner-key-1";nonce="abcdefghijklmnop"'
    for value in ["a\r\n b", "a\x00b", "é"]:
        base, _ = _fast_base(
            "POST", "https://points.example.test/v1", [("x-trace", value)], ['"x-trace"'], params
        )
        assert base is None


request_signatures = st.builds(
    lambda raw, params: http_sf.ser({LABEL: (raw, params)})[len(LABEL) + 1 :],
    st.binary(min_size=1, max_size=64),
    st.sampled_from([{}, {"a": 1}, {"x": "y", "z": True}]),
)
response_fields = st.lists(
    st.tuples(
        st.sampled_from(
            ["content-type", "x-request-id", "Content-Digest", "idempotent-replayed", "signature"]
        ),
        st.text(alphabet="abc/+=-;: ", max_size=20),
    ),
    max_size=6,
)


@given(
    st.sampled_from([200, 201, 400, 404, 409, 422, 503]),
    response_fields,
    st.binary(max_size=200),
    st.sampled_from(["sig1", "sig2", "a-b", "k*"]),
    request_signatures,
    st.integers(1_700_000_000, 2_000_000_000),
)
def test_a_receipt_is_the_packages_receipt_byte_for_byte(
    status: int,
    fields: list[tuple[str, str]],
    body: bytes,
    request_label: str,
    request_signature: str,
    created: int,
) -> None:
    key_id = "coalition-4b58c2327012c7e9"
    request = RequestMessage(
        "POST",
        "https://points.example.test/v1/transactions/issue",
        HeaderFields([("Signature", f"{request_label}={request_signature}")]),
    )
    expected = HeaderFields([(n, v) for n, v in fields if n.lower() != "content-digest"])
    sign_message(
        ResponseMessage(status, expected, request),
        key_id=key_id,
        private_key=KEY,
        covered=("@status", "content-digest", f'"signature";req;key="{request_label}"'),
        label="receipt",
        body=body,
        created=datetime.fromtimestamp(created, UTC),
    )
    ours = sign_receipt(
        fields,
        status=status,
        body=body,
        request_label=request_label,
        request_signature=request_signature,
        key_id=key_id,
        private_key=KEY,
        created=created,
        label="receipt",
    )
    assert ours == expected.items()


def test_the_inner_list_text_is_the_signature_inputs_own() -> None:
    text = '("@method" "content-type";sf "@query-param";name="a");keyid="k";created=1'
    parsed = http_sf.parse(f"sig1={text}".encode(), tltype="dictionary")
    assert isinstance(parsed, dict)
    members: Any = parsed["sig1"]
    assert inner_list_text(*members) == text


@pytest.mark.parametrize("method", ["get", "Post"])
def test_a_method_not_in_upper_case_is_left_to_the_package(method: str) -> None:
    params = ';created=1700000000;keyid="partner-key-1"'
    base, _ = _fast_base(method, "https://points.example.test/", [], ['"@method"'], params)
    assert base is None
