"""The references the product's figures are held against: the raw ``GROUP BY`` a person would
write over the period's postings, and a bare openpyxl write-only loop of as many rows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final
from uuid import UUID

from openpyxl import Workbook

from clearhouse.bench.servers import (
    BenchError,
)
from clearhouse.domain.records import SealedPeriod
from clearhouse.services.database import Database
from clearhouse.statements.columns import ENTRY_COLUMNS
from clearhouse.statements.workbook import EXCEL_MAX_ROWS, entries_sheet_title

RAW_GROUP_BY: Final = """
SELECT e.partner_id, e.kind, sum(p.amount) AS points, count(*) AS postings
  FROM postings p
  JOIN entries e ON e.entry_id = p.entry_id
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
   AND p.asset = 'PTS' AND p.account LIKE 'partner:%'
 GROUP BY e.partner_id, e.kind
"""
"""The reference: per partner and kind, the points of the period, over the postings."""


@dataclass(frozen=True, slots=True)
class WorkbookFile:
    party: str
    rows: int
    size_bytes: int


async def raw_group_by(database: Database, closed: SealedPeriod) -> None:
    async with database.driver_connection() as connection:
        rows = await connection.fetch(RAW_GROUP_BY, closed.starts_at, closed.ends_at)
    if not rows:
        raise BenchError("the raw GROUP BY found no postings")


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")


def bare_rows(count: int, partner_id: str, seed: str) -> Iterator[list[object]]:
    """Rows of the Entries sheet's ten columns as plain values, alike in kind and length to the
    real ones (random UUIDs, member ids, references, one in ten a reversal)."""
    rng = random.Random(seed)
    bits = rng.getrandbits
    moment = datetime(2030, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # Excel's carry no zone
    tick = timedelta(seconds=2)
    kinds = ("issue", "issue", "issue", "issue", "issue", "issue", "redeem", "redeem", "redeem")
    for n in range(count):
        moment += tick
        reversal = n % 10 == 9
        yield [
            str(UUID(int=bits(128))),
            moment,
            moment - tick,
            "reversal" if reversal else kinds[n % 9],
            partner_id,
            f"bench-member-{bits(17) % 100_000:06d}",
            bits(7) + 1,
            1,
            "return of goods" if reversal else f"receipt {bits(32):08x}",
            str(UUID(int=bits(128))) if reversal else None,
        ]


def bare_workbook(party: str, count: int, path: Path) -> WorkbookFile:
    """The reference: a write-only workbook of ``count`` rows of the same ten columns, plain
    values, no formats or cell objects; past Excel's row limit on a further sheet."""
    header = [column.header for column in ENTRY_COLUMNS]
    workbook = Workbook(write_only=True)
    rows = bare_rows(count, party, seed=party)
    left, number = count, 0
    while True:
        number += 1
        sheet = workbook.create_sheet(entries_sheet_title(number))
        sheet.append(header)
        take = min(left, EXCEL_MAX_ROWS - 1)
        for _ in range(take):
            sheet.append(next(rows))
        left -= take
        if left <= 0:
            break
    workbook.save(path)
    return WorkbookFile(party, count, path.stat().st_size)
