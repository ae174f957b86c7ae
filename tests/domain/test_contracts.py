"""Contract files: every problem named with file, line or key; version rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from clearhouse.domain.contracts import (
    ContractInvalid,
    StoredVersion,
    check_versions,
    contract_json_schema,
    parse_contract,
)
from clearhouse.domain.purposes import DataField, LegalBasis, Purpose

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
BAKERY = (CONTRACTS / "baeckerei-schmidt.v2.toml").read_text()
ISSUE_RATE_LINE = next(
    number for number, line in enumerate(BAKERY.splitlines(), 1) if line.startswith("issue_rate")
)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ContractInvalid) as refused:
        parse_contract("bakery.toml", text.encode())
    return [str(p) for p in refused.value.problems]


def test_the_shipped_contracts_parse_with_their_terms() -> None:
    versions = [parse_contract(p.name, p.read_bytes()) for p in sorted(CONTRACTS.glob("*.toml"))]
    assert {v.partner_id for v in versions} == {"baeckerei-schmidt", "shopwelt", "tankstelle-nord"}
    bakery_v2 = next(v for v in versions if v.partner_id == "baeckerei-schmidt" and v.version == 2)
    assert bakery_v2.redemption_rate == Decimal("0.0080")
    assert bakery_v2.grants[Purpose.MARKETING].legal_basis is LegalBasis.CONSENT
    assert DataField.POSTAL_CODE not in bakery_v2.grants[Purpose.MARKETING].fields
    assert bakery_v2.effective_from == datetime(2026, 11, 14, 23, tzinfo=UTC)


def test_the_schema_file_is_in_step_with_the_types() -> None:
    import json

    shipped = json.loads((CONTRACTS / "schema.json").read_text())
    assert shipped == contract_json_schema()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('issue_rate = "0.0100"', 'issue_rate = "-0.0100"'),
            f"bakery.toml:{ISSUE_RATE_LINE}: settlement.issue_rate: a rate cannot be negative",
        ),
        (
            ('issue_rate = "0.0100"', 'issue_rate = "0.0100001"'),
            f"bakery.toml:{ISSUE_RATE_LINE}: settlement.issue_rate: 0.0100001 has more than 6",
        ),
        (("[purposes.marketing]", "[purposes.shopping]"), "purposes.shopping: unknown purpose"),
        (
            ('fields = ["member.email", "member.given_name"]', 'fields = ["member.iban"]'),
            "purposes.marketing.fields: unknown field 'member.iban'",
        ),
        (
            ('currency = "EUR"', 'currency = "EUR"\ncolour = "red"'),
            "colour: Object contains unknown field `colour`",
        ),
        (
            ("max_points_per_transaction = 5000", 'max_points_per_transaction = "many"'),
            "limits.max_points_per_transaction: Expected `int`, got `str`",
        ),
        (("version = 2", "version = 0"), "version: versions start at 1"),
        (
            (
                'effective_from = "2026-11-15T00:00:00+01:00"',
                'effective_from = "2026-11-15T00:00:00"',
            ),
            "effective_from: needs a UTC offset",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_where_and_what(
    change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in BAKERY
    found = problems_of(BAKERY.replace(old, new))
    assert any(expected in p for p in found), found


def test_every_problem_of_a_file_is_listed_at_once() -> None:
    text = BAKERY.replace('issue_rate = "0.0100"', 'issue_rate = "-1.1234567"')
    text = text.replace('redemption_rate = "0.0080"', 'redemption_rate = "abc"')
    found = problems_of(text)
    assert len(found) == 3, found


def test_not_toml_names_the_line() -> None:
    assert any(p.startswith("bakery.toml:3:") for p in problems_of("a = 1\nb = 2\nc = = 3\n"))


def stored(version: int, day: int, sha: str = "a" * 64) -> StoredVersion:
    return StoredVersion(version, datetime(2026, 11, day, tzinfo=UTC), sha)


def test_versions_are_immutable_ordered_and_never_retroactive() -> None:
    v2 = parse_contract("v2.toml", BAKERY.encode())
    names = {("baeckerei-schmidt", 2): "v2.toml"}
    partner = "baeckerei-schmidt"

    fresh, problems = check_versions(names, [v2], {partner: [stored(1, 1)]}, {})
    assert fresh == [v2]
    assert problems == []

    same, problems = check_versions(
        names, [v2], {partner: [stored(1, 1), stored(2, 14, v2.sha256)]}, {}
    )
    assert same == []
    assert problems == []

    _, changed = check_versions(names, [v2], {partner: [stored(1, 1), stored(2, 14)]}, {})
    assert "immutable" in changed[0].message

    _, gap = check_versions(names, [v2], {}, {})
    assert "next version of baeckerei-schmidt is 1" in gap[0].message

    _, order = check_versions(names, [v2], {partner: [stored(1, 20)]}, {})
    assert order[0].key == "effective_from"

    late_entry = {partner: datetime(2026, 11, 20, tzinfo=UTC)}
    _, back = check_versions(names, [v2], {partner: [stored(1, 1)]}, late_entry)
    assert "reach back" in back[0].message
