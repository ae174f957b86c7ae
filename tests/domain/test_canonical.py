"""Canonical JSON: the fast encoder writes exactly the reference RFC 8785 bytes, and an entry's
line is byte for byte the reference: its fields as a dict through ``rfc8785``, its moments
through ``strftime``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.domain import canonical
from clearhouse.domain.canonical import canonical_entry, canonical_json, evidence_of, utc_text

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


def reference_utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
        max_value=datetime(9998, 12, 31),  # noqa: DTZ001
        timezones=st.none()
        | st.just(UTC)
        | st.builds(timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m)))
        | st.timezones(),
    )
)
def test_a_moment_is_written_as_strftime_writes_it(moment: datetime) -> None:
    assert utc_text(moment) == reference_utc_text(moment)


def reference_entry_line(**fields: object) -> bytes:
    """The leaf as first written: a dict of the fields, encoded by the reference package."""
    postings = fields["postings"]
    assert isinstance(postings, list)
    occurred_at, recorded_at = fields["occurred_at"], fields["recorded_at"]
    assert isinstance(recorded_at, datetime)
    assert occurred_at is None or isinstance(occurred_at, datetime)
    signature = fields["signature"]
    assert signature is None or isinstance(signature, str)
    kind = fields["kind"]
    assert isinstance(kind, str)
    line: dict[str, object] = {
        "entry_id": str(fields["entry_id"]),
        "kind": kind,
        "partner_id": fields["partner_id"],
        "member_id": fields["member_id"],
        "points": fields["points"],
        "postings": [
            {
                "account": account,
                "asset": asset,
                "amount": int(amount) if asset == "PTS" else str(amount),
            }
            for account, asset, amount in sorted(postings, key=lambda p: (p[0], p[1]))
        ],
        "contract_version": fields["contract_version"],
        "occurred_at": None if occurred_at is None else reference_utc_text(occurred_at),
        "recorded_at": reference_utc_text(recorded_at),
        "reference": fields["reference"],
        "reversal_of": None if fields["reversal_of"] is None else str(fields["reversal_of"]),
        "signature_input": fields["signature_input"],
        "signature": signature,
        "content_digest": fields["content_digest"],
        "signature_base": fields["signature_base"],
        "evidence": evidence_of(kind, signature),
    }
    if fields["hold_id"] is not None:
        line["hold_id"] = str(fields["hold_id"])
    return rfc8785.dumps(line)


@given(
    entry_id=st.uuids(),
    kind=st.sampled_from(["issue", "redeem", "reversal", "expiry", "adjustment", "settlement"]),
    partner_id=optional_texts,
    member_id=optional_texts,
    points=st.integers(0, 10**9),
    postings=st.lists(
        st.tuples(
            st.sampled_from(["member:m", "partner:p:issued", "coalition:breakage"]) | texts,
            st.sampled_from(["PTS", "EUR"]),
            st.integers(-(10**12), 10**12),
            st.integers(0, 6),
        ).map(lambda p: (p[0], p[1], p[2] if p[1] == "PTS" else Decimal(p[2]).scaleb(-p[3]))),
        min_size=2,
        max_size=4,
    ),
    version=st.none() | st.integers(1, 99),
    occurred_at=st.none() | instants,
    recorded_at=instants,
    reference=optional_texts,
    reversal_of=st.none() | st.uuids(),
    evidence=st.tuples(optional_texts, optional_texts, optional_texts, optional_texts),
    hold_id=st.none() | st.uuids(),
)
def test_an_entrys_line_is_the_reference_line_byte_for_byte(
    entry_id: UUID,
    kind: str,
    partner_id: str | None,
    member_id: str | None,
    points: int,
    postings: list[tuple[str, str, int | Decimal]],
    version: int | None,
    occurred_at: datetime | None,
    recorded_at: datetime,
    reference: str | None,
    reversal_of: UUID | None,
    evidence: tuple[str | None, str | None, str | None, str | None],
    hold_id: UUID | None,
) -> None:
    fields: dict[str, object] = {
        "entry_id": entry_id,
        "kind": kind,
        "partner_id": partner_id,
        "member_id": member_id,
        "points": points,
        "postings": postings,
        "contract_version": version,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "reference": reference,
        "reversal_of": reversal_of,
        "signature_input": evidence[0],
        "signature": evidence[1],
        "content_digest": evidence[2],
        "signature_base": evidence[3],
        "hold_id": hold_id,
    }
    assert canonical_entry(**fields) == reference_entry_line(**fields)  # type: ignore[arg-type]


def test_the_line_structs_declare_their_fields_in_jcs_order() -> None:
    """The lines are encoded in declaration order, so the declarations must be sorted."""
    for struct in (canonical._Line, canonical._CaptureLine, canonical.CanonicalPosting):
        fields = list(struct.__struct_fields__)
        assert fields == sorted(fields), struct.__name__
