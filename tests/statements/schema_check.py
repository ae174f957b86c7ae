"""A served statement held against the published schema (``statements/schema.json``) with the
``jsonschema`` package, as an auditor's own tool would hold it."""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec
from jsonschema import Draft202012Validator, ValidationError

from clearhouse.statements.model import shipped_statement_schema

SCHEMA: Final[dict[str, Any]] = json.loads(shipped_statement_schema())
VALIDATOR: Final = Draft202012Validator(SCHEMA)


def as_json(value: object) -> Any:
    """``value`` as its JSON reads back: objects as dicts, arrays as lists."""
    return json.loads(msgspec.json.encode(value))


def _described(error: ValidationError) -> list[str]:
    """An error as lines ``path: message``; a ``oneOf`` that fails, as what failed in each."""
    if error.context:
        return [line for inner in error.context for line in _described(inner)]
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"]


def schema_problems(served: object) -> list[str]:
    """Where ``served`` (JSON as parsed, or a served statement's type) breaks the schema."""
    document = served if isinstance(served, dict) else as_json(served)
    return sorted(line for error in VALIDATOR.iter_errors(document) for line in _described(error))


def assert_served_as_the_schema_says(served: object) -> None:
    problems = schema_problems(served)
    assert not problems, problems
