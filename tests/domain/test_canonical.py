"""Canonical JSON: the fast encoder writes exactly the reference RFC 8785 bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.domain.canonical import canonical_entry, canonical_json

texts = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | texts,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="abcdefghij_", max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(alphabet="abcdefghijklmnop_", max_size=10), json_values))
def test_documents_encode_as_rfc_8785(document: dict[str, object]) -> None:
    assert canonical_json(document) == rfc8785.dumps(document)


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
optional_texts = st.none() | texts


@given(
    entry_id=st.uuids(),
    kind=st.sampled_from(["issue", "redeem", "reversal", "expiry", "adjustment", "settlement"]),
    partner_id=optional_texts,
    member_id=optional_texts,
    points=st.integers(0, 10**9),
    amounts=st.lists(
        st.tuples(texts, st.sampled_from(["PTS", "EUR"]), st.integers(-(10**9), 10**9)),
        min_size=2,
        max_size=4,
    ),
    version=st.none() | st.integers(1, 99),
    occurred_at=st.none() | instants,
    recorded_at=instants,
    reference=optional_texts,
    reversal_of=st.none() | st.uuids(),
    evidence=st.tuples(optional_texts, optional_texts, optional_texts, optional_texts),
)
def test_every_entry_shape_encodes_as_rfc_8785(
    entry_id: UUID,
    kind: str,
    partner_id: str | None,
    member_id: str | None,
    points: int,
    amounts: list[tuple[str, str, int]],
    version: int | None,
    occurred_at: datetime | None,
    recorded_at: datetime,
    reference: str | None,
    reversal_of: UUID | None,
    evidence: tuple[str | None, str | None, str | None, str | None],
) -> None:
    postings = [
        (account, asset, amount if asset == "PTS" else Decimal(amount) / 100)
        for account, asset, amount in amounts
    ]
    encoded = canonical_entry(
        entry_id=entry_id,
        kind=kind,
        partner_id=partner_id,
        member_id=member_id,
        points=points,
        postings=postings,
        contract_version=version,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        reference=reference,
        reversal_of=reversal_of,
        signature_input=evidence[0],
        signature=evidence[1],
        content_digest=evidence[2],
        signature_base=evidence[3],
    )
    decoded = rfc8785.dumps(json.loads(encoded))
    assert encoded == decoded
    assert b'"recorded_at":"' + recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode() in encoded
    evidence_kind = json.loads(encoded)["evidence"]
    assert (evidence_kind == "partner_signature") == (evidence[1] is not None)
