"""The queries of clearing: a period's entries in root order, its aggregates, periods and
statements as stored. Set-based: one statement per figure, never a query per entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, cast

import asyncpg

from clearhouse.domain.canonical import CanonicalPosting, line_of_fields
from clearhouse.domain.money import POINTS_ASSET
from clearhouse.domain.netting import Aggregate, Cohort, Expired, LineKind, PointsRollForward
from clearhouse.domain.records import SealedPeriod, StatementEntry

PERIOD_LOCK_CLASS = 1128812
"""The advisory lock class of periods (``period_lock_class()`` in the migrations)."""
FETCH_BATCH = 500
"""Rows of a period's stream asked for at once: about what the socket's buffers hold, so that
PostgreSQL writes the next batch while this process works through the last one."""


@dataclass(frozen=True, slots=True)
class StatementRow:
    period: str
    party: str
    sequence: int
    document: bytes
    sha256: bytes
    signature: bytes
    key_id: str


_PERIOD_COLUMNS = """
    period, status, starts_at, ends_at, closed_at, entry_count, tree_head, previous_root, root,
    settled_at
"""


def _period(row: asyncpg.Record) -> SealedPeriod:
    return SealedPeriod(
        period=row["period"],
        status=row["status"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        closed_at=row["closed_at"],
        entry_count=int(row["entry_count"]),
        tree_head=bytes(row["tree_head"]),
        previous_root=bytes(row["previous_root"]),
        root=bytes(row["root"]),
        settled_at=row["settled_at"],
    )


async def lock_period(connection: asyncpg.Connection, period: str) -> None:
    """Wait for every entry in flight in ``period`` and keep new ones out until commit."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock($1, $2)", PERIOD_LOCK_CLASS, int(period.replace("-", ""))
    )


async def fetch_period(connection: asyncpg.Connection, period: str) -> SealedPeriod | None:
    row = await connection.fetchrow(
        f"SELECT {_PERIOD_COLUMNS} FROM periods WHERE period = $1", period
    )
    return None if row is None else _period(row)


async def custom_plans(connection: asyncpg.Connection) -> None:
    """Plan every statement of this transaction for its own period: a generic plan of the
    period aggregates (chosen after five runs on one pooled connection) took 45 s and then
    failed at 1,000,000 entries."""
    await connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def fetch_periods(connection: asyncpg.Connection) -> list[SealedPeriod]:
    rows = await connection.fetch(f"SELECT {_PERIOD_COLUMNS} FROM periods ORDER BY period")
    return [_period(row) for row in rows]


async def previous_period(connection: asyncpg.Connection, period: str) -> SealedPeriod | None:
    row = await connection.fetchrow(
        f"SELECT {_PERIOD_COLUMNS} FROM periods WHERE period < $1 ORDER BY period DESC LIMIT 1",
        period,
    )
    return None if row is None else _period(row)


async def first_entry_between(
    connection: asyncpg.Connection, start: datetime | None, end: datetime
) -> datetime | None:
    """The first ``recorded_at`` in ``[start, end)`` (from the beginning when ``start`` is None)."""
    value = await connection.fetchval(
        """
        SELECT min(recorded_at) FROM entries
         WHERE ($1::timestamptz IS NULL OR recorded_at >= $1) AND recorded_at < $2
        """,
        start,
        end,
    )
    return value if isinstance(value, datetime) else None


async def insert_period(
    connection: asyncpg.Connection, row: SealedPeriod, cohorts: list[Cohort] | None
) -> None:
    """The sealed period and, with it, its breakage ``cohorts`` as of its cut-off (``None``
    only as a period closed before they were sealed with it: its cohorts are computed when it
    is netted, ``sealed_cohorts``)."""
    await connection.execute(
        f"INSERT INTO periods ({_PERIOD_COLUMNS}, cohorts_sealed)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        row.period,
        row.status,
        row.starts_at,
        row.ends_at,
        row.closed_at,
        row.entry_count,
        row.tree_head,
        row.previous_root,
        row.root,
        row.settled_at,
        cohorts is not None,
    )
    if cohorts:
        await connection.executemany(
            "INSERT INTO period_cohorts (period, month, issued, adjusted, redeemed, expired,"
            " outstanding, redeemed_by_age) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(row.period, *_cohort_fields(c)) for c in cohorts],
        )


def _cohort_fields(c: Cohort) -> tuple[object, ...]:
    """A cohort's columns of ``period_cohorts`` after its period, in their order."""
    return (
        c.month, c.issued, c.adjusted, c.redeemed, c.expired, c.outstanding,
        list(c.redeemed_by_age),
    )  # fmt: skip


async def sealed_cohorts(connection: asyncpg.Connection, period: str) -> list[Cohort] | None:
    """The breakage cohorts sealed with the closed ``period``, by month; ``None`` when it was
    closed before cohorts were sealed with periods (or is not closed)."""
    rows = await connection.fetch(
        """
        SELECT c.month, c.issued, c.adjusted, c.redeemed, c.expired, c.outstanding,
               c.redeemed_by_age
          FROM periods p LEFT JOIN period_cohorts c ON c.period = p.period
         WHERE p.period = $1 AND p.cohorts_sealed
         ORDER BY c.month
        """,
        period,
    )
    if not rows:
        return None
    return [
        Cohort(
            month=r["month"],
            issued=r["issued"],
            adjusted=r["adjusted"],
            redeemed=r["redeemed"],
            expired=r["expired"],
            outstanding=r["outstanding"],
            redeemed_by_age=tuple(r["redeemed_by_age"]),
        )
        for r in rows
        if r["month"] is not None
    ]


async def mark_settled(connection: asyncpg.Connection, period: str) -> None:
    await connection.execute(
        "UPDATE periods SET status = 'settled', settled_at = ledger_now() WHERE period = $1",
        period,
    )


async def _batches(
    connection: asyncpg.Connection, query: str, *args: object
) -> AsyncIterator[list[asyncpg.Record]]:
    """The rows of ``query`` through a server-side cursor (the caller holds a transaction), a
    batch at a time, so memory stays flat however many rows there are; the next batch is asked
    for before this one is handed on, so PostgreSQL reads it while the caller works."""
    cursor = await connection.cursor(query, *args)
    pending = asyncio.ensure_future(cursor.fetch(FETCH_BATCH))
    try:
        while rows := await pending:
            pending = asyncio.ensure_future(cursor.fetch(FETCH_BATCH))
            await asyncio.sleep(0)  # the request goes out before the rows are worked through
            yield rows
    finally:
        if not pending.done():  # the caller stopped early: the connection finishes the fetch
            await asyncio.wait([pending])


async def _streamed(
    connection: asyncpg.Connection, query: str, *args: object
) -> AsyncIterator[asyncpg.Record]:
    """The rows of ``query`` one by one, fetched as ``_batches`` fetches them."""
    async for rows in _batches(connection, query, *args):
        for row in rows:
            yield row


def utc_text_sql(column: str) -> str:
    """SQL writing the timestamptz ``column`` as ``canonical.utc_text`` does (NULL stays NULL):
    microseconds and ``Z``, and a year before 1000 without leading zeros, as ``strftime``.

    asyncpg writes ``datetime.min`` and ``datetime.max`` (UTC) as ``-infinity`` and
    ``infinity``, and reads them back as those datetimes, so those two are their texts too.
    """
    return (
        f"CASE WHEN {column} = 'infinity' THEN '9999-12-31T23:59:59.999999Z' "
        f"WHEN {column} = '-infinity' THEN '1-01-01T00:00:00.000000Z' "
        f"ELSE to_char({column} AT TIME ZONE 'UTC', CASE WHEN {column} < '1000-01-01 00:00:00+00' "
        f"""THEN 'FMYYYY-MM-DD"T"HH24:MI:SS.US"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) END"""
    )


POSTING_TEXT_SQL: Final = (
    "p.account || ' ' || p.asset || ' ' || "
    "CASE WHEN p.asset = 'PTS' THEN trunc(p.amount)::bigint::text ELSE p.amount::text END"
)
"""A posting as one text: its account, asset and amount, a space between them (an account's
name and an asset's code hold none: ``accounts_name_format``, ``assets_code_format``); points
as the integer, money as the decimal text of ``numeric(30, 6)``, which is ``str`` of the
``Decimal`` that asyncpg reads."""

POSTING_ORDER_SQL: Final = 'p.account COLLATE "C", p.asset COLLATE "C"'
"""An entry's postings in ``canonical_entry``'s order: by account, then asset, in code points
(the bytes of UTF-8 sort as its code points do)."""

_CANONICAL_ENTRIES: Final = f"""
SELECT e.entry_id::text, e.kind, e.partner_id, e.member_id, e.points, e.contract_version,
       {utc_text_sql("e.occurred_at")}, {utc_text_sql("e.recorded_at")}, e.reference,
       e.reversal_of::text, e.signature_input, e.signature, e.content_digest, e.signature_base,
       e.hold_id::text,
       (SELECT string_agg({POSTING_TEXT_SQL}, ' ' ORDER BY {POSTING_ORDER_SQL})
          FROM postings p WHERE p.entry_id = e.entry_id)
  FROM entries e
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
 ORDER BY e.recorded_at, e.entry_id
"""
"""The columns in the order ``line_of_fields`` takes them, the postings last as one text
(``POSTING_TEXT_SQL``, one after the other): asyncpg took about 10 µs of Python per entry to
read them as an array of rows, under 2 µs as one text, and PostgreSQL writes the text no slower
(measured in docs/scaling.md)."""


def postings_of_text(text: str) -> list[CanonicalPosting]:
    """The postings that ``POSTING_TEXT_SQL`` wrote into one text, in its order."""
    fields = text.split(" ")
    if len(fields) % 3:
        raise ValueError(f"postings written as {len(fields)} fields, not three each")
    return [
        CanonicalPosting(account, int(amount) if asset == POINTS_ASSET else amount, asset)
        for account, asset, amount in zip(fields[::3], fields[1::3], fields[2::3], strict=True)
    ]


_EntryFields = tuple[
    str, str, str | None, str | None, int, int | None, str | None, str, str | None, str | None,
    str | None, str | None, str | None, str | None, str | None,
]  # fmt: skip
"""A row of ``_CANONICAL_ENTRIES`` before its postings: ``line_of_fields``'s first fifteen."""


async def canonical_batches(
    connection: asyncpg.Connection, start: datetime, end: datetime
) -> AsyncIterator[list[bytes]]:
    """The period's entries as canonical JSON, in ``(recorded_at, entry_id)`` order, a batch of
    lines at a time (``_batches``). PostgreSQL writes the ids, moments and amounts as text in
    the forms of ``canonical_entry`` and orders each entry's postings by code point
    (``COLLATE "C"``), so Python only encodes (``line_of_fields``)."""
    async for rows in _batches(connection, _CANONICAL_ENTRIES, start, end):
        lines = []
        for row in rows:
            fields = cast(_EntryFields, row[:15])
            lines.append(line_of_fields(*fields, postings_of_text(row[15])))
        yield lines


async def canonical_entries(
    connection: asyncpg.Connection, start: datetime, end: datetime
) -> AsyncIterator[bytes]:
    """``canonical_batches`` line by line."""
    async for lines in canonical_batches(connection, start, end):
        for line in lines:
            yield line


@dataclass(frozen=True, slots=True)
class PeriodAggregates:
    """The period's entries in one pass: the partners' aggregates and what the operator's
    entries moved (the roll-forward's movements are these, ``points_roll_forward``)."""

    partners: list[Aggregate]
    expired_points: int
    """Points expiry entries took from members."""
    adjusted_points: int
    """What adjustment entries moved on members, signed (goodwill positive)."""


# No subquery per row here: a correlated one keeps PostgreSQL from running the scan in parallel
# workers, which the raw GROUP BY of the same month gets (measured: 2.1x the time without them).
_PERIOD_AGGREGATES = """
SELECT e.partner_id, e.contract_version,
       CASE WHEN coalesce(o.kind, e.kind) = 'issue' THEN 'issue' ELSE 'redemption' END AS kind,
       coalesce(sum(e.points) FILTER (WHERE e.kind <> 'reversal'), 0) AS points,
       coalesce(sum(e.points) FILTER (WHERE e.kind = 'reversal'), 0) AS reversed,
       count(*) AS entries
  FROM entries e
  LEFT JOIN entries o ON o.entry_id = e.reversal_of
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
   AND e.kind IN ('issue', 'redeem', 'reversal')
 GROUP BY 1, 2, 3
 ORDER BY 1, 2, 3
"""

# The operator's entries found by their own index (``entries_operator_recorded_at``); their
# points column is unsigned, so what they moved on members is read from the postings.
_OPERATOR_MEMBER_POINTS = """
SELECT e.kind, sum(p.amount) AS member_points
  FROM entries e
  JOIN postings p ON p.entry_id = e.entry_id
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
   AND e.kind IN ('expiry', 'adjustment')
   AND p.asset = 'PTS' AND p.account LIKE 'member:%'
 GROUP BY 1
"""


async def period_aggregates(
    connection: asyncpg.Connection, start: datetime, end: datetime
) -> PeriodAggregates:
    """Per partner, contract version and kind: points, reversed points and entries of the
    partners' entries (one scan of the period); and the member points of the period's expiries
    and adjustments (their own statement)."""
    partners = [
        Aggregate(
            partner_id=r["partner_id"],
            contract_version=r["contract_version"],
            kind=LineKind(r["kind"]),
            points=int(r["points"]),
            reversed_points=int(r["reversed"]),
            entries=int(r["entries"]),
        )
        for r in await connection.fetch(_PERIOD_AGGREGATES, start, end)
    ]
    moved = {"expiry": 0, "adjustment": 0}
    for r in await connection.fetch(_OPERATOR_MEMBER_POINTS, start, end):
        moved[r["kind"]] = int(r["member_points"])
    return PeriodAggregates(partners, -moved["expiry"], moved["adjustment"])


async def expired_by_issuer(
    connection: asyncpg.Connection, start: datetime, end: datetime
) -> list[Expired]:
    """Per issuing partner and contract version: points of its lots expired in ``[start, end)``
    (by the expiry run or an operator's expiry)."""
    rows = await connection.fetch(
        """
        SELECT l.partner_id, l.contract_version, sum(c.points) AS points
          FROM entries e
          JOIN lot_consumptions c ON c.entry_id = e.entry_id
          JOIN lots l ON l.lot_id = c.lot_id
         WHERE e.recorded_at >= $1 AND e.recorded_at < $2 AND e.kind = 'expiry'
           AND l.partner_id IS NOT NULL
         GROUP BY 1, 2
        HAVING sum(c.points) <> 0
         ORDER BY 1, 2
        """,
        start,
        end,
    )
    return [Expired(r["partner_id"], r["contract_version"], int(r["points"])) for r in rows]


_COHORT_MOVES = """
WITH moves AS (
    SELECT l.cohort_at, l.recorded_at AS moved_at, coalesce(o.kind, e.kind) AS kind,
           l.points AS points
      FROM lots l
      LEFT JOIN entries e ON e.entry_id = l.entry_id
      LEFT JOIN entries o ON o.entry_id = e.reversal_of
     WHERE l.recorded_at < $1
    UNION ALL
    SELECT l.cohort_at, e.recorded_at, coalesce(o.kind, e.kind), -c.points
      FROM lot_consumptions c
      JOIN entries e ON e.entry_id = c.entry_id
      LEFT JOIN entries o ON o.entry_id = e.reversal_of
      JOIN lots l ON l.lot_id = c.lot_id
     WHERE e.recorded_at < $1
), dated AS (
    SELECT date_trunc('month', cohort_at AT TIME ZONE $2) AS cohort,
           date_trunc('month', moved_at AT TIME ZONE $2) AS month, kind, points
      FROM moves
)
SELECT to_char(cohort, 'YYYY-MM') AS cohort,
       ((extract(year FROM month) - extract(year FROM cohort)) * 12
        + extract(month FROM month) - extract(month FROM cohort))::integer AS age,
       coalesce(sum(points) FILTER (WHERE kind = 'issue'), 0) AS issued,
       coalesce(-sum(points) FILTER (WHERE kind = 'redeem'), 0) AS redeemed,
       coalesce(-sum(points) FILTER (WHERE kind = 'expiry'), 0) AS expired,
       coalesce(sum(points) FILTER (WHERE kind IS NULL
                                       OR kind NOT IN ('issue', 'redeem', 'expiry')), 0)
           AS adjusted
  FROM dated GROUP BY 1, 2 ORDER BY 1, 2
"""

_COHORT_HOLDINGS = """
SELECT to_char(date_trunc('month', h.cohort_at AT TIME ZONE $2), 'YYYY-MM') AS cohort,
       sum(h.points) AS outstanding
  FROM (SELECT l.cohort_at, l.remaining AS points FROM lots l WHERE l.recorded_at < $1
        UNION ALL
        -- What the lots gave after the cut-off, back on them: few entries, found by time.
        SELECT l.cohort_at, c.points FROM entries e
          JOIN lot_consumptions c ON c.entry_id = e.entry_id
          JOIN lots l ON l.lot_id = c.lot_id
         WHERE e.recorded_at >= $1 AND l.recorded_at < $1) AS h
 GROUP BY 1
"""


async def breakage_cohorts(
    connection: asyncpg.Connection, end: datetime, zone: str, cut_off_month: str
) -> list[Cohort]:
    """Every month of issue, as of the cut-off ``end``: what its lots were issued, adjusted,
    redeemed and expired (from lots and their consumptions), and what they hold (from the
    lots' remainders, less what moved after the cut-off: a second reading)."""
    moves = await connection.fetch(_COHORT_MOVES, end, zone)
    holdings = {
        r["cohort"]: int(r["outstanding"])
        for r in await connection.fetch(_COHORT_HOLDINGS, end, zone)
    }
    by_month: dict[str, list[asyncpg.Record]] = {}
    for row in moves:
        by_month.setdefault(row["cohort"], []).append(row)
    cohorts = []
    for month, rows in sorted(by_month.items()):
        ages = _months_between(month, cut_off_month) + 1
        curve = [0] * max(ages, max(r["age"] for r in rows) + 1)
        for r in rows:
            # Only a redeem made before lots existed, reversed later, moves a cohort before it.
            curve[max(r["age"], 0)] += int(r["redeemed"])
        cohorts.append(
            Cohort(
                month=month,
                issued=sum(int(r["issued"]) for r in rows),
                adjusted=sum(int(r["adjusted"]) for r in rows),
                redeemed=sum(int(r["redeemed"]) for r in rows),
                expired=sum(int(r["expired"]) for r in rows),
                outstanding=holdings.get(month, 0),
                redeemed_by_age=tuple(curve),
            )
        )
    return cohorts


def _months_between(first: str, last: str) -> int:
    """Whole months from ``first`` to ``last`` (both YYYY-MM)."""
    y1, m1 = (int(part) for part in first.split("-"))
    y2, m2 = (int(part) for part in last.split("-"))
    return (y2 - y1) * 12 + m2 - m1


async def points_roll_forward(
    connection: asyncpg.Connection,
    start: datetime,
    end: datetime,
    opening: int | None,
    aggregates: PeriodAggregates,
) -> PointsRollForward:
    """What moved member points in ``[start, end)``, and what members held at the cut-off.

    The movements are the period's aggregates: issued and redeemed are the partners' lines
    (each less its reversals), expired and adjusted what the operator's entries moved. The
    holdings come from the members' balance rows, less what moved after the cut-off (both
    read in one statement), so the roll-forward is checked against a second source rather
    than against the entries it is made of. ``opening`` is the previous period's closing
    figure; without one (the first period) it is summed from the postings before.
    """
    row = await connection.fetchrow(
        """
        SELECT (SELECT coalesce(sum(balance_points), 0) FROM member_balances) AS held_now,
               (SELECT coalesce(sum(p.amount), 0) FROM entries e
                  JOIN postings p ON p.entry_id = e.entry_id
                 WHERE e.recorded_at >= $1 AND p.asset = 'PTS' AND p.account LIKE 'member:%')
                   AS after_cut_off
        """,
        end,
    )
    assert row is not None
    if opening is None:
        opening = int(
            await connection.fetchval(
                """
                SELECT coalesce(sum(p.amount), 0) FROM entries e
                  JOIN postings p ON p.entry_id = e.entry_id
                 WHERE e.recorded_at < $1 AND p.asset = 'PTS' AND p.account LIKE 'member:%'
                """,
                start,
            )
        )
    lines = aggregates.partners
    return PointsRollForward(
        opening=opening,
        issued=sum(a.points - a.reversed_points for a in lines if a.kind is LineKind.ISSUE),
        redeemed=sum(a.points - a.reversed_points for a in lines if a.kind is LineKind.REDEMPTION),
        expired=aggregates.expired_points,
        adjusted=aggregates.adjusted_points,
        closing_member_balances=int(row["held_now"]) - int(row["after_cut_off"]),
    )


async def settlement_positions(
    connection: asyncpg.Connection, accounts: list[str]
) -> dict[str, Decimal]:
    rows = await connection.fetch(
        """
        SELECT a.account, coalesce(sum(p.amount), 0) AS total
          FROM unnest($1::text[]) AS a(account)
          LEFT JOIN postings p ON p.account = a.account
         GROUP BY a.account
        """,
        accounts,
    )
    return {r["account"]: Decimal(r["total"]) for r in rows}


async def insert_statement(connection: asyncpg.Connection, row: StatementRow) -> None:
    await connection.execute(
        """
        INSERT INTO statements (period, party, sequence, document, sha256, signature, key_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        row.period,
        row.party,
        row.sequence,
        row.document,
        row.sha256,
        row.signature,
        row.key_id,
    )


async def fetch_statements(
    connection: asyncpg.Connection, period: str, party: str | None = None
) -> list[StatementRow]:
    rows = await connection.fetch(
        """
        SELECT period, party, sequence, document, sha256, signature, key_id FROM statements
         WHERE period = $1 AND ($2::text IS NULL OR party = $2) ORDER BY party
        """,
        period,
        party,
    )
    return [
        StatementRow(
            r["period"],
            r["party"],
            r["sequence"],
            bytes(r["document"]),
            bytes(r["sha256"]),
            bytes(r["signature"]),
            r["key_id"],
        )
        for r in rows
    ]


async def statement_sequence(connection: asyncpg.Connection, party: str) -> int:
    value = await connection.fetchval("SELECT count(*) + 1 FROM statements WHERE party = $1", party)
    return int(value)


async def statement_entries(
    connection: asyncpg.Connection, start: datetime, end: datetime, partner_id: str | None
) -> AsyncIterator[StatementEntry]:
    """The period's entries (one partner's, or all) in root order, streamed (``_streamed``)."""
    rows = _streamed(
        connection,
        """
        SELECT entry_id::text, recorded_at, occurred_at, kind, partner_id, member_id, points,
               contract_version, reference, reversal_of::text
          FROM entries
         WHERE recorded_at >= $1 AND recorded_at < $2
           AND ($3::text IS NULL OR partner_id = $3)
         ORDER BY recorded_at, entry_id
        """,
        start,
        end,
        partner_id,
    )
    async for r in rows:
        # The ids as PostgreSQL writes a uuid: lowercase and hyphenated, as str(UUID) does.
        yield StatementEntry(
            r["entry_id"],
            r["recorded_at"],
            r["occurred_at"],
            r["kind"],
            r["partner_id"],
            r["member_id"],
            int(r["points"]),
            r["contract_version"],
            r["reference"],
            r["reversal_of"],
        )
