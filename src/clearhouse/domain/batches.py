"""Batches: many issues or many redeems of one partner in one signed request.

A batch serves one purpose, as every purpose-bound request does: its ``Data-Purpose`` is
``accrual`` for a batch of issues, ``redemption`` for a batch of redeems; an item of another kind
is refused as ``purpose_not_permitted``, and the others stand. Each item is an issue or a redeem
with its own ``idempotency_key``, checked and recorded by the rules of a single one (validation,
the contract's grant and limits, the member's points, the period cut-off, replays); the batch has
its own key too, under which its answer is kept, item by item, so that its retry is answered
the same. An ``atomic`` batch is all or nothing: one item refused and nothing of it is written.

What an item came to is an ``ItemOutcome``: the entry it made (or an earlier request under its
key made), or the refusal, as the problem's code, detail and the input at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from clearhouse.domain.errors import ClearhouseError, Field, InvalidRequest
from clearhouse.domain.ledger import EntryKind
from clearhouse.domain.purposes import Purpose
from clearhouse.domain.records import Entry

BATCH_ITEMS_MAX: Final = 1000
"""Items of one batch at most: a batch holds its members' rows locked until it commits."""

KIND_OF_PURPOSE: Final = {Purpose.ACCRUAL: EntryKind.ISSUE, Purpose.REDEMPTION: EntryKind.REDEEM}
"""The kind of entry a batch of each purpose holds."""


class BatchNotApplied(ClearhouseError):
    """An atomic batch with a refused item: nothing of it was written."""

    code = "batch_not_applied"

    def __init__(self, detail: str, refused: Sequence[tuple[int, ItemRefused]]) -> None:
        super().__init__(detail)
        self.refused = tuple(refused)


@dataclass(frozen=True, slots=True)
class ItemPosted:
    """The item's entry; ``replayed`` when an earlier request under its key made it."""

    entry: Entry
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ItemRefused:
    """Why the item was not recorded: a problem's code and detail, and for ``invalid_request``
    the input at fault, from the batch's body (``("items", 3, "points")``)."""

    code: str
    detail: str
    field: Field | None = None

    @classmethod
    def of(cls, error: ClearhouseError, index: int) -> ItemRefused:
        field = None
        if isinstance(error, InvalidRequest):
            field = ("items", index, *(error.field or ()))
        return cls(error.code, error.detail, field)


ItemOutcome = ItemPosted | ItemRefused


def check_batch(keys: Sequence[str]) -> None:
    """A batch of 1 to ``BATCH_ITEMS_MAX`` items, each with a key of its own."""
    if not 1 <= len(keys) <= BATCH_ITEMS_MAX:
        raise InvalidRequest(f"a batch holds 1 to {BATCH_ITEMS_MAX} items", field="items")
    seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in seen:
            raise InvalidRequest(
                f"items {seen[key]} and {index} have the same idempotency_key",
                field=("items", index, "idempotency_key"),
            )
        seen[key] = index


def purpose_refusal(purpose: Purpose, kind: EntryKind) -> str | None:
    """Why an item of ``kind`` has no place in a batch for ``purpose`` (None: it has)."""
    if KIND_OF_PURPOSE.get(purpose) is kind:
        return None
    return f"a batch for the purpose {purpose.value!r} holds only {KIND_OF_PURPOSE[purpose]}s"


def outcome_record(outcome: ItemOutcome) -> dict[str, Any]:
    """What the batch keeps of an item's outcome (JSON), from which ``outcome_of`` rebuilds
    it: the entry's id, or the refusal."""
    if isinstance(outcome, ItemPosted):
        return {"entry_id": str(outcome.entry.entry_id), "replayed": outcome.replayed}
    record: dict[str, Any] = {"code": outcome.code, "detail": outcome.detail}
    if outcome.field is not None:
        record["field"] = list(outcome.field)
    return record


def entry_of_record(record: dict[str, Any]) -> UUID | None:
    """The entry an item's kept outcome names (None: it was refused)."""
    return UUID(record["entry_id"]) if "entry_id" in record else None


def outcome_of(record: dict[str, Any], entries: dict[UUID, Entry]) -> ItemOutcome:
    """The outcome an item's kept record says, its entry read back from ``entries``."""
    entry_id = entry_of_record(record)
    if entry_id is not None:
        return ItemPosted(entries[entry_id], bool(record["replayed"]))
    field = record.get("field")
    return ItemRefused(record["code"], record["detail"], None if field is None else tuple(field))
