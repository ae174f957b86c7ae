"""The statements' types: decoded by party, strict about their fields, and published as the
JSON Schema that ``statements/schema.json`` holds and every served statement meets."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import rfc8785
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from clearhouse.cli import main
from clearhouse.statements import model
from clearhouse.statements.documents import SignedStatement, statement_problems
from clearhouse.statements.model import (
    CoalitionStatement,
    PartnerStatement,
    ServedCoalitionStatement,
    ServedPartnerStatement,
    decode_statement,
    shipped_statement_schema,
    statement_json_schema,
    statement_schema_text,
)
from tests.statements.schema_check import (
    SCHEMA,
    as_json,
    assert_served_as_the_schema_says,
    schema_problems,
)
from tests.statements.test_statement_bytes import (
    EXPECTED_COALITION,
    EXPECTED_PARTNER,
    KEY,
    LEDGER_ROOT,
    bakery_statement,
    coalition_statement,
)

SOURCE_SCHEMA = Path(__file__).resolve().parents[2] / "src/clearhouse/statements/schema.json"
DOCUMENTS = [
    model.StatementLine,
    model.ContractTerms,
    model.PartnerPosition,
    model.RollForward,
    model.Integrity,
    PartnerStatement,
    CoalitionStatement,
]


def field_names(kind: type[msgspec.Struct]) -> list[str]:
    return [field.name for field in msgspec.structs.fields(kind)]


def test_the_schema_file_is_in_step_with_the_types() -> None:
    assert SOURCE_SCHEMA.read_text() == statement_schema_text()
    assert shipped_statement_schema() == statement_schema_text()


def test_clearhouse_statement_schema_writes_the_shipped_file(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(main, ["statement", "schema"])
    written = runner.invoke(main, ["statement", "schema", "--out", str(tmp_path / "s.json")])

    assert printed.exit_code == 0, printed.output
    assert printed.output == SOURCE_SCHEMA.read_text()
    assert written.exit_code == 0, written.output
    assert (tmp_path / "s.json").read_text() == SOURCE_SCHEMA.read_text()


def test_the_schema_is_json_schema_2020_12_with_a_description_for_every_field() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    definitions = SCHEMA["$defs"]
    for name, definition in definitions.items():
        if definition.get("type") == "object":
            assert definition.get("description"), f"{name} has no description"
        for field, shape in definition.get("properties", {}).items():
            described = shape.get("description") or definitions.get(
                shape.get("$ref", "").removeprefix("#/$defs/"), {}
            ).get("description")
            assert described, f"{name}.{field} has no description"


def test_every_type_declares_its_fields_in_the_order_of_the_canonical_json() -> None:
    for kind in DOCUMENTS:
        assert field_names(kind) == sorted(field_names(kind)), kind.__name__
    for served, signed in [
        (ServedPartnerStatement, PartnerStatement),
        (ServedCoalitionStatement, CoalitionStatement),
    ]:
        assert field_names(served) == [*field_names(signed), "integrity"]


def test_the_signed_documents_decode_as_the_statement_of_their_party() -> None:
    partner, coalition = bakery_statement(), coalition_statement()

    assert isinstance(partner.body(), PartnerStatement)
    assert isinstance(coalition.body(), CoalitionStatement)
    assert isinstance(partner.with_integrity(), ServedPartnerStatement)
    assert isinstance(coalition.with_integrity(), ServedCoalitionStatement)
    assert as_json(partner.body()) == EXPECTED_PARTNER
    assert as_json(coalition.body()) == EXPECTED_COALITION


@pytest.mark.parametrize(
    ("party", "document"),
    [
        ("baeckerei-schmidt", {**EXPECTED_PARTNER, "bonus": "1.00"}),
        ("coalition", {**EXPECTED_COALITION, "bonus": "1.00"}),
        ("baeckerei-schmidt", {**EXPECTED_PARTNER, "lines": [{"amount": "1.00"}]}),
        ("coalition", EXPECTED_PARTNER),
        ("baeckerei-schmidt", EXPECTED_COALITION),
        ("baeckerei-schmidt", {**EXPECTED_PARTNER, "net": 12.3}),
    ],
    ids=[
        "an unknown field",
        "an unknown field in the coalition's",
        "a line without its fields",
        "a partner's as the coalition's",
        "the coalition's as a partner's",
        "money as a number",
    ],
)
def test_a_document_of_another_shape_is_refused(party: str, document: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_statement(party, msgspec.json.encode(document))


def test_a_stored_document_of_another_shape_is_a_finding() -> None:
    document = msgspec.json.encode({**EXPECTED_PARTNER, "bonus": "1.00"})
    stored = SignedStatement(
        "baeckerei-schmidt", 4, document, hashlib.sha256(document).digest(), KEY.sign(document), "k"
    )

    problems = statement_problems(stored, KEY.public_key, LEDGER_ROOT)

    assert len(problems) == 1
    assert problems[0].startswith("its document is not a statement: ")
    assert "bonus" in problems[0]


def test_the_statements_served_validate_against_the_published_schema() -> None:
    for statement in (bakery_statement(), coalition_statement()):
        assert_served_as_the_schema_says(statement.with_integrity())
        assert_served_as_the_schema_says(as_json(statement.with_integrity()))


def _broken(served: dict[str, Any], path: list[str | int], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(served)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["net"], "-11.5"),
        (["net"], -11.5),
        (["lines", 0, "rate"], "1E-2"),
        (["lines", 0, "kind"], "bonus"),
        (["integrity"], ...),
        (["integrity", "sha256"], "AB" * 32),
        (["generated_at"], "2026-12-01T07:30:12Z"),
        (["partner_id"], None),
        (["contract_versions", 0, "notes"], "extra"),
    ],
)
def test_the_schema_refuses_what_a_statement_never_is(path: list[str | int], value: object) -> None:
    served = as_json(bakery_statement().with_integrity())
    assert schema_problems(served) == []

    assert schema_problems(_broken(served, path, value))


def test_the_coalitions_statement_has_a_null_partner_in_the_schema() -> None:
    served = as_json(coalition_statement().with_integrity())

    assert schema_problems(_broken(served, ["partner_id"], "coalition"))
    assert schema_problems(_broken(served, ["partner_id"], ...))
    coalition = statement_json_schema()["$defs"]["ServedCoalitionStatement"]
    assert coalition["properties"]["partner_id"]["type"] == "null"
    assert "partner_id" in coalition["required"]


def test_a_statement_is_served_as_stored_even_in_a_shape_the_types_no_longer_have() -> None:
    older = {k: v for k, v in EXPECTED_PARTNER.items() if k != "who_pays"}
    document = rfc8785.dumps(older)
    stored = SignedStatement(
        "baeckerei-schmidt", 4, document, hashlib.sha256(document).digest(), KEY.sign(document), "k"
    )

    served = json.loads(stored.served_json())

    assert rfc8785.dumps({k: v for k, v in served.items() if k != "integrity"}) == document
    assert served["integrity"]["sha256"] == hashlib.sha256(document).hexdigest()
    with pytest.raises(msgspec.ValidationError, match="who_pays"):
        stored.body()
