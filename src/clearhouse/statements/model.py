"""The statements as types: what a partner's and the coalition's statement hold, field by field.

A statement is signed as the RFC 8785 bytes of one of the two documents below
(``PartnerStatement``, ``CoalitionStatement``) and served with its ``Integrity`` block added
(``ServedPartnerStatement``, ``ServedCoalitionStatement``). Money and rates are decimal strings
(``"12.30"``, ``"0.0125"``), never JSON numbers, so no reader's float can change them; points are
integers; moments are RFC 3339 UTC text with microseconds and ``Z``. The types are frozen, and
decoding refuses a field that is not declared here, so a document either is a statement of this
shape or is refused. A field added later needs a default, so that the statements signed before
it still decode (they are served as they were stored, without it: ``served_json``), and is left
out of a document while it holds its default (``omit_defaults``): the breakage figures appear
only where points expired or lots exist, so a statement without them is byte for byte what it
was before they existed.

Each document's fields are declared in the order of their names, the order of the canonical
JSON, so the served document lists them as the signed bytes do, with ``integrity`` last.
``statement_json_schema`` turns these types into the JSON Schema that auditors get as
``statements/schema.json``; the descriptions below are what that schema says of each field.
"""

from __future__ import annotations

import json
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from clearhouse.domain.netting import LineKind

COALITION_PARTY: Final = "coalition"
"""The party of the coalition's own statement (a partner's party is its partner id)."""

_MONEY = r"^-?[0-9]+\.[0-9]{2}$"
_RATE = r"^[0-9]+(\.[0-9]+)?$"
_UTC_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
_SHA256_HEX = r"^[0-9a-f]{64}$"
_PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_ED25519_BASE64 = r"^[A-Za-z0-9+/]{86}==$"

Money = Annotated[
    str,
    Meta(
        pattern=_MONEY,
        description="An amount in the statement's currency: a decimal string with two decimals.",
    ),
]
Rate = Annotated[
    str,
    Meta(pattern=_RATE, description="A rate per point or per entry: a decimal string."),
]
UtcTime = Annotated[
    str,
    Meta(pattern=_UTC_TIME, description="A moment in UTC: RFC 3339 with microseconds and Z."),
]
Sha256Hex = Annotated[str, Meta(pattern=_SHA256_HEX, description="A SHA-256, lowercase hex.")]
Period = Annotated[str, Meta(pattern=_PERIOD, description="A month, YYYY-MM.")]
Points = Annotated[int, Meta(description="A number of points.")]
CountedPoints = Annotated[int, Meta(ge=0, description="A number of points, never negative.")]


class Direction(StrEnum):
    """Who pays whom: the sign of the net, in words."""

    COALITION_PAYS_PARTNER = "coalition_pays_partner"
    PARTNER_PAYS_COALITION = "partner_pays_coalition"
    NOTHING_DUE = "nothing_due"


class StatementLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One line of a partner's statement: one contract version and one kind, with the
    reversals of that version's entries netted into it."""

    amount: Annotated[Money, Meta(description="quantity x rate, rounded once to cents, half-even.")]
    contract_version: Annotated[
        int,
        Meta(
            ge=1,
            description="The contract version the entries were recorded under (a reversal "
            "counts under the version of the entry it reverses).",
        ),
    ]
    kind: Annotated[
        LineKind,
        Meta(
            description="issue: the partner pays for points it issued; redemption: the "
            "coalition pays for points redeemed there; fee: an operator fee per entry; "
            "breakage: the coalition returns the contract's breakage_share_rate per point "
            "of the partner's issues that expired in the period."
        ),
    ]
    points: Annotated[
        CountedPoints,
        Meta(description="Points of the period's entries of this kind and version (0: fee)."),
    ]
    quantity: Annotated[
        int,
        Meta(
            description="points - reversed_points for issue and redemption (negative when "
            "more was reversed than recorded); the number of entries for a fee line."
        ),
    ]
    rate: Annotated[
        Rate,
        Meta(
            description="The version's issue_rate, redemption_rate, fee_per_entry or "
            "breakage_share_rate."
        ),
    ]
    reversed_points: Annotated[
        CountedPoints,
        Meta(
            description="Points of the period's reversals of entries of this kind and "
            "version (the entries reversed may be older)."
        ),
    ]


class ExpiredPoints(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Points of the partner's issues under one contract version that expired in the period,
    valued at that version's issue rate: information, not part of the net (a breakage line is,
    where the contract sets a breakage share)."""

    contract_version: Annotated[int, Meta(ge=1, description="The version they were issued under.")]
    issue_rate: Annotated[Rate, Meta(description="That version's issue_rate.")]
    points: Annotated[CountedPoints, Meta(description="Points that expired in the period.")]
    value: Annotated[
        Money, Meta(description="points x issue_rate, rounded once to cents, half-even.")
    ]


class BreakageCohort(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One month of issue, from then to the period's cut-off, read from the lots: what an
    auditor needs for a breakage estimate (IFRS 15 B44-B47)."""

    adjusted: Annotated[Points, Meta(description="Points added (+) or taken (-) by adjustments.")]
    expired: Annotated[Points, Meta(description="Points of the cohort that expired.")]
    issued: Annotated[Points, Meta(description="Points issued in the month, net of reversals.")]
    month: Annotated[Period, Meta(description="The month of issue, in the coalition's time zone.")]
    outstanding: Annotated[
        Points,
        Meta(description="Still held at the cut-off: issued + adjusted - redeemed - expired."),
    ]
    redeemed: Annotated[Points, Meta(description="Points of the cohort redeemed, net.")]
    redeemed_by_age: Annotated[
        tuple[Points, ...],
        Meta(
            description="Points redeemed (net) in the month of issue, the month after, and so "
            "on up to the cut-off's month: the redemption curve by age in months."
        ),
    ]


class ContractTerms(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """The terms of one contract version that has a line in the statement."""

    breakage_share_rate: Annotated[
        Rate | None,
        Meta(
            description="What the coalition returns per point of the partner's issues that "
            "expired (absent: nothing)."
        ),
    ] = None
    effective_from: Annotated[UtcTime, Meta(description="When the version took effect.")]
    fee_per_entry: Annotated[Rate, Meta(description="The operator fee per entry.")]
    issue_rate: Annotated[
        Rate, Meta(description="What the partner pays the coalition per point issued.")
    ]
    max_points_per_member_per_day: Annotated[
        int, Meta(ge=0, description="The version's limit per member and day.")
    ]
    max_points_per_transaction: Annotated[
        int, Meta(ge=0, description="The version's limit per entry.")
    ]
    redemption_rate: Annotated[
        Rate, Meta(description="What the coalition pays the partner per point redeemed.")
    ]
    sha256: Annotated[
        Sha256Hex, Meta(description="SHA-256 of the contract's TOML file as it was loaded.")
    ]
    version: Annotated[int, Meta(ge=1, description="The contract version.")]


class PartnerPosition(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """One partner's figures in the coalition's statement, as its own statement states them."""

    breakage_amount: Annotated[
        Money | None, Meta(description="The partner's breakage lines (absent: none).")
    ] = None
    direction: Direction
    expired_points: Annotated[
        CountedPoints,
        Meta(description="Points of the partner's issues expired in the period (absent: 0)."),
    ] = 0
    expired_value: Annotated[
        Money | None,
        Meta(description="Those points at their issue rates, as information (absent: none)."),
    ] = None
    fees: Annotated[Money, Meta(description="The partner's fees.")]
    issue_amount: Annotated[Money, Meta(description="The partner's issue amount.")]
    legal_name: Annotated[str, Meta(description="The partner's legal name.")]
    net: Annotated[
        Money, Meta(description="redemption_amount + breakage_amount - issue_amount - fees.")
    ]
    partner_id: Annotated[str, Meta(description="The partner's id.")]
    redemption_amount: Annotated[Money, Meta(description="The partner's redemption amount.")]


class RollForward(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The members' outstanding points over the period, from opening to closing."""

    adjusted: Annotated[Points, Meta(description="Points added (+) or taken (-) by adjustments.")]
    closing: Annotated[
        Points, Meta(description="opening + issued - redeemed - expired + adjusted.")
    ]
    expired: Annotated[Points, Meta(description="Points expired in the period.")]
    issued: Annotated[Points, Meta(description="Points issued, net of reversals.")]
    member_balances_at_cut_off: Annotated[
        Points,
        Meta(description="The sum of member balances at the period's end; equals closing."),
    ]
    opening: Annotated[
        Points, Meta(description="Outstanding points at the end of the previous period.")
    ]
    redeemed: Annotated[Points, Meta(description="Points redeemed, net of reversals.")]


class OpenHolds(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Holds open at the period's cut-off: points reserved for partners, not yet redeemed. They
    are still in the members' balances (and in ``closing``); a capture lands in the period it is
    recorded in."""

    holds: Annotated[int, Meta(ge=0, description="How many holds were open at the cut-off.")]
    points: Annotated[Points, Meta(description="The points those holds reserved.")]


class PartnerStatement(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """A partner's settlement statement for one period, as signed."""

    breakage_amount: Annotated[
        Money | None, Meta(description="The sum of the breakage lines (absent: none).")
    ] = None
    closing_position: Annotated[
        Money, Meta(description="The settlement position after the period: opening + net.")
    ]
    coalition: Annotated[str, Meta(description="The coalition's name.")]
    contract_versions: Annotated[
        tuple[ContractTerms, ...],
        Meta(description="Each contract version that has a line, oldest first."),
    ]
    currency: Annotated[str, Meta(description="The currency of every amount, ISO 4217.")]
    direction: Direction
    entries: Annotated[int, Meta(ge=0, description="The partner's entries netted.")]
    expired_points: Annotated[
        tuple[ExpiredPoints, ...],
        Meta(
            description="Points of the partner's issues that expired, per version (absent: none)."
        ),
    ] = ()
    fees: Annotated[Money, Meta(description="The sum of the fee lines.")]
    generated_at: Annotated[UtcTime, Meta(description="When the statement was made.")]
    issue_amount: Annotated[Money, Meta(description="The sum of the issue lines.")]
    ledger_root: Annotated[Sha256Hex, Meta(description="The period's ledger root.")]
    legal_name: Annotated[str, Meta(description="The partner's legal name.")]
    lines: Annotated[
        tuple[StatementLine, ...],
        Meta(description="By contract version, then kind (breakage, fee, issue, redemption)."),
    ]
    net: Annotated[
        Money,
        Meta(
            description="redemption_amount + breakage_amount - issue_amount - fees: positive, "
            "the coalition pays the partner; negative, the partner pays the coalition."
        ),
    ]
    opening_position: Annotated[
        Money, Meta(description="The settlement position before the period.")
    ]
    partner_id: Annotated[str, Meta(description="The partner's id.")]
    period: Period
    redemption_amount: Annotated[Money, Meta(description="The sum of the redemption lines.")]
    sequence: Annotated[
        int, Meta(ge=1, description="The partner's statements so far, this one included.")
    ]
    statement_id: Annotated[str, Meta(description="PERIOD/PARTNER_ID.")]
    who_pays: Annotated[str, Meta(description="Who pays whom, in words, with the amount.")]


class CoalitionStatement(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """The coalition's statement for one period, as signed: every partner's net, their sum
    against the coalition's margin, and the members' points."""

    breakage_cohorts: Annotated[
        tuple[BreakageCohort, ...],
        Meta(
            description="Every month of issue as of the cut-off, oldest first; their "
            "outstanding points add up to member_balances_at_cut_off (absent: no lots)."
        ),
    ] = ()
    coalition: Annotated[str, Meta(description="The coalition's name.")]
    coalition_margin: Annotated[
        Money,
        Meta(
            description="What partners pay for issued points and fees, less what the "
            "coalition pays for redeemed points and breakage shares."
        ),
    ]
    currency: Annotated[str, Meta(description="The currency of every amount, ISO 4217.")]
    generated_at: Annotated[UtcTime, Meta(description="When the statement was made.")]
    ledger_root: Annotated[Sha256Hex, Meta(description="The period's ledger root.")]
    multilateral_check: Annotated[
        Money, Meta(description="partners_net_total + coalition_margin; always 0.00.")
    ]
    open_holds_at_cut_off: OpenHolds
    partner_id: Annotated[None, Meta(description="Always null: the coalition's statement.")]
    partners: Annotated[
        tuple[PartnerPosition, ...],
        Meta(description="Every partner with entries or expired points, by id."),
    ]
    partners_net_total: Annotated[Money, Meta(description="The sum of the partners' nets.")]
    period: Period
    points_roll_forward: RollForward
    sequence: Annotated[
        int, Meta(ge=1, description="The coalition's statements so far, this one included.")
    ]
    statement_id: Annotated[str, Meta(description="PERIOD/coalition.")]


Statement = PartnerStatement | CoalitionStatement


class Integrity(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How the statement is signed: what an auditor needs to check it without Clearhouse."""

    algorithm: Annotated[Literal["ed25519"], Meta(description="The signature's algorithm.")]
    canonicalization: Annotated[
        Literal["RFC 8785 (JCS), without this integrity block"],
        Meta(description="What was hashed and signed: the document without this block."),
    ]
    key_id: Annotated[
        str, Meta(description="The coalition key that signed, as published at GET /v1/keys.")
    ]
    sha256: Annotated[
        Sha256Hex, Meta(description="SHA-256 of the canonical bytes: the statement hash.")
    ]
    signature: Annotated[
        str,
        Meta(
            pattern=_ED25519_BASE64,
            description="The Ed25519 signature over the canonical bytes, base64.",
        ),
    ]


class ServedPartnerStatement(PartnerStatement, frozen=True, kw_only=True):
    """A partner's statement as served: the signed document and its integrity block."""

    integrity: Integrity


class ServedCoalitionStatement(CoalitionStatement, frozen=True, kw_only=True):
    """The coalition's statement as served: the signed document and its integrity block."""

    integrity: Integrity


ServedStatement = ServedPartnerStatement | ServedCoalitionStatement

_PARTNER_DECODER: Final = msgspec.json.Decoder(PartnerStatement)
_COALITION_DECODER: Final = msgspec.json.Decoder(CoalitionStatement)


def decode_statement(party: str, document: bytes) -> Statement:
    """The statement of ``party`` from its signed bytes: the coalition's for ``coalition``, a
    partner's otherwise. A document of another shape is a ``msgspec.ValidationError``."""
    if party == COALITION_PARTY:
        return _COALITION_DECODER.decode(document)
    return _PARTNER_DECODER.decode(document)


def served(statement: Statement, integrity: Integrity) -> ServedStatement:
    """``statement`` with its integrity block, as the API and the files give it."""
    fields = msgspec.structs.asdict(statement)
    if isinstance(statement, CoalitionStatement):
        return ServedCoalitionStatement(**fields, integrity=integrity)
    return ServedPartnerStatement(**fields, integrity=integrity)


SCHEMA_FILE: Final = "schema.json"
"""The schema's file in this package: ``clearhouse statement schema`` writes it."""
SCHEMA_TITLE: Final = "Clearhouse settlement statement"
SCHEMA_DESCRIPTION: Final = (
    "A settlement statement as Clearhouse serves it: a partner's or the coalition's document "
    "and its integrity block. The statement hash is SHA-256 of the document without "
    "'integrity', canonicalised per RFC 8785 (JCS); the signature is Ed25519 over the same "
    "bytes with the key named by integrity.key_id."
)


def statement_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a served statement, for auditors' own tools; shipped as
    ``statements/schema.json``."""
    (partner, coalition), components = msgspec.json.schema_components(
        (ServedPartnerStatement, ServedCoalitionStatement)
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": SCHEMA_TITLE,
        "description": SCHEMA_DESCRIPTION,
        "oneOf": [partner, coalition],
        "$defs": components,
    }


def statement_schema_text() -> str:
    """``statement_json_schema`` as the text of ``statements/schema.json``."""
    return json.dumps(statement_json_schema(), indent=2, sort_keys=True) + "\n"


def shipped_statement_schema() -> str:
    """The text of ``statements/schema.json`` as the package carries it."""
    return resources.files(__package__).joinpath(SCHEMA_FILE).read_text()
