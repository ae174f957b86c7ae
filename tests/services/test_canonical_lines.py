"""Closing a period reads each entry's ids, moments and amounts as PostgreSQL writes them as
text (``storage.clearing.canonical_entries``), not as Python writes them from decoded values
(``canonical_entry``, the reference form). The lines must be the same bytes, or every root
sealed since would fail to recompute for an auditor:

- a moment, by ``utc_text_sql``, is ``utc_text`` of the same instant, years below 1000 too;
- a posting, written into one text by ``POSTING_TEXT_SQL`` and read back by ``postings_of_text``,
  is its account, its asset, and ``int`` (points) or ``str`` (money) of the ``Decimal`` that
  asyncpg reads from ``numeric(30, 6)``; and no account name or asset code holds the space
  between the fields (the database refuses one);
- postings sorted by ``POSTING_ORDER_SQL`` come in Python's order of code points (the servers
  here sort C.UTF-8 by default; ``COLLATE "C"`` keeps that order on a database made with
  another collation);
- and over a ledger that holds every kind of entry, every line is the reference's line.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.canonical import CanonicalPosting, canonical_entry, utc_text
from clearhouse.domain.expiry import ExpiryMode, ExpiryPolicy
from clearhouse.domain.records import Evidence
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry
from clearhouse.services.holds import HoldRequest, Holds
from clearhouse.services.posting import Ledger, PointsRequest
from clearhouse.storage.clearing import (
    POSTING_ORDER_SQL,
    POSTING_TEXT_SQL,
    canonical_entries,
    postings_of_text,
    utc_text_sql,
)
from tests.conftest import fresh_database
from tests.services.builders import ZONE, a_partner, unique

PROPERTY: Final = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

moments = st.datetimes(
    min_value=datetime(1, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
    timezones=st.just(UTC),
)


async def _rows(dsn: str, query: str, arguments: list[tuple[Any, ...]]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return [await connection.fetchrow(query, *values) for values in arguments]
    finally:
        await connection.close()


@PROPERTY
@given(st.lists(moments, min_size=1, max_size=40))
@example(
    [
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(99, 7, 4, 0, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
)
def test_postgresql_writes_a_moment_as_utc_text_does(dsn: str, instants: list[datetime]) -> None:
    # Compared with the instant sent, not with what asyncpg reads back: it reads
    # 0001-01-01T00:00:00Z as a naive datetime.min, which the text form never meets.
    query = f"SELECT {utc_text_sql('$1::timestamptz')}"
    rows = asyncio.run(_rows(dsn, query, [(moment,) for moment in instants]))
    for moment, row in zip(instants, rows, strict=True):
        assert row[0] == utc_text(moment)
    assert (
        asyncio.run(_rows(dsn, f"SELECT {utc_text_sql('NULL::timestamptz')}", [()]))[0][0] is None
    )


money = st.decimals(
    min_value=Decimal("-999999999999999999999999.999999"),
    max_value=Decimal("999999999999999999999999.999999"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
).filter(lambda amount: amount != 0)
points = st.integers(-(10**18), 10**18).filter(lambda amount: amount != 0)


names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
"""Account names as ``accounts_name_format`` admits them: printable ASCII, no space."""


@PROPERTY
@given(
    st.lists(
        st.one_of(
            st.tuples(names, st.just("PTS"), points.map(Decimal)),
            st.tuples(names, st.sampled_from(["EUR", "CHF"]), money),
        ),
        min_size=1,
        max_size=12,
    )
)
@example(
    [
        ("a", "EUR", Decimal("0.000001")),
        ("b", "EUR", Decimal("-0.1")),
        ("c", "EUR", Decimal("1E+6")),
    ]
)
@example(
    [
        ("member:x", "PTS", Decimal(1)),
        ("'\\\"~", "PTS", Decimal(-(10**18))),
        ("z", "EUR", Decimal("12.5")),
    ]
)
def test_postgresql_writes_postings_as_canonical_entry_reads_them(
    dsn: str, postings: list[tuple[str, str, Decimal]]
) -> None:
    query = f"""
        SELECT array_agg(p.amount ORDER BY p.n), string_agg({POSTING_TEXT_SQL}, ' ' ORDER BY p.n)
          FROM unnest($1::text[], $2::text[], $3::numeric(30, 6)[]) WITH ORDINALITY
               AS p (account, asset, amount, n)
    """
    arguments = [tuple(list(column) for column in zip(*postings, strict=True))]
    ((decoded, text),) = asyncio.run(_rows(dsn, query, arguments))
    assert postings_of_text(text) == [
        CanonicalPosting(account, int(amount) if asset == "PTS" else str(amount), asset)
        for (account, asset, _), amount in zip(postings, decoded, strict=True)
    ]


def test_postings_of_a_text_not_three_fields_each_are_refused() -> None:
    with pytest.raises(ValueError, match="not three each"):
        postings_of_text("member:a PTS 5 partner:b:issued PTS")


@pytest.mark.parametrize(
    ("table", "value"),
    [
        ("accounts", "member:a b"),
        ("accounts", "member:\tb"),
        ("accounts", "member:ä"),
        ("accounts", ""),
        ("assets", "P S"),
        ("assets", "PTS\n"),
    ],
)
async def test_the_database_refuses_a_name_the_postings_text_could_not_hold(
    database: Database, table: str, value: str
) -> None:
    insert = {
        "accounts": "INSERT INTO accounts (account, kind) VALUES ($1, 'coalition')",
        "assets": "INSERT INTO assets (asset, kind, scale) VALUES ($1, 'money', 2)",
    }[table]
    async with database.driver_connection() as connection:
        with pytest.raises(asyncpg.CheckViolationError, match=f"{table}_(name|code)_format"):
            await connection.execute(insert, value)
        assert (
            await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE {table[:-1]} = $1", value
            )
            == 0
        )


accounts = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=12
)


@PROPERTY
@given(st.lists(st.tuples(accounts, accounts), min_size=1, max_size=12))
@example([("member:b", "PTS"), ("member:B", "PTS"), ("member:ä", "PTS"), ("member:a", "EUR")])
def test_postings_sorted_in_the_c_collation_come_in_code_point_order(
    dsn: str, postings: list[tuple[str, str]]
) -> None:
    query = f"""
        SELECT array_agg(ROW(p.account, p.asset) ORDER BY {POSTING_ORDER_SQL})
          FROM unnest($1::text[], $2::text[]) AS p (account, asset)
    """
    arguments = [([account for account, _ in postings], [asset for _, asset in postings])]
    (row,) = asyncio.run(_rows(dsn, query, arguments))
    assert [tuple(record) for record in row[0]] == sorted(postings)


# The reference: the entry's columns as asyncpg decodes them, written by ``canonical_entry``.
_REFERENCE = """
SELECT e.entry_id, e.kind, e.partner_id, e.member_id, e.points, e.contract_version,
       e.occurred_at, e.recorded_at, e.reference, e.reversal_of, e.signature_input,
       e.signature, e.content_digest, e.signature_base, e.hold_id,
       (SELECT array_agg(ROW(p.account, p.asset, p.amount)) FROM postings p
         WHERE p.entry_id = e.entry_id) AS postings
  FROM entries e
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
 ORDER BY e.recorded_at, e.entry_id
"""

ISSUED: Final = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
AFTER_OCTOBER: Final = datetime(2026, 10, 31, 23, 0, 1, tzinfo=UTC)
EXPIRED: Final = datetime(2026, 11, 5, 11, 1, tzinfo=UTC)
SIGNED: Final = Evidence(
    signature_input='sig1=("@method" "@path" "content-digest");created=1;keyid="k-ü"',
    signature="sig1=:3q2+7w==:",
    content_digest="sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
    signature_base='"@method": POST\n"@path": /v1/transactions/issue\n'
    '"@signature-params": ("@method");created=1 — 😀 \\ "quoted"',
)


async def _every_kind_of_entry() -> tuple[list[bytes], list[bytes], set[str]]:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=ISSUED)
        one_month = ExpiryPolicy(mode=ExpiryMode.FIXED, months=1, align="exact")
        ledger = Ledger(database, ContractBook(database), ZONE, one_month)
        holds = Holds(database, ContractBook(database), ledger)
        clearing = Clearing(
            database, zone=ZoneInfo(ZONE), key=CoalitionKey.of(Ed25519PrivateKey.generate())
        )
        bakery, shop = await a_partner(database, "bakery"), await a_partner(database, "shop")
        anna, ben = unique("m"), unique("m")
        await enrol_members(database, [anna, ben])

        def request(member: str, amount: int, at: datetime, reference: str) -> PointsRequest:
            return PointsRequest(
                member_id=member, points=amount, occurred_at=at, reference=reference
            )

        ref = 'Bäckerei "Zur Sonne" \\ receipt 1 — €'
        await ledger.issue(bakery, request(anna, 500, ISSUED, ref), idempotency_key=unique("i"),
                           evidence=SIGNED)  # fmt: skip
        y2k = datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
        await ledger.issue(bakery, request(ben, 300, y2k, ref), idempotency_key=unique("i"))
        redeem = await ledger.redeem(
            shop, request(anna, 120, ISSUED, ref), idempotency_key=unique("r"), evidence=SIGNED
        )
        await ledger.reverse(
            shop, redeem.entry.entry_id, points=40, reason="returned", idempotency_key=unique("v")
        )
        # A hold takes any instant of the calendar; its capture's redeem carries it.
        long_ago = datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        hold = await holds.authorize(
            shop,
            HoldRequest(member_id=ben, points=90, occurred_at=long_ago, reference="pump 7"),
            idempotency_key=unique("h"),
        )
        await holds.capture(shop, hold.hold.hold_id, 60, idempotency_key=unique("c"))
        await ledger.adjust(anna, 7, "goodwill")
        await ledger.adjust(ben, -3, "correction")
        await set_ledger_time(database, sandbox=True, at=AFTER_OCTOBER)
        await clearing.settle("2026-10")  # its settlement entries move money
        await set_ledger_time(database, sandbox=True, at=EXPIRED)
        await Expiry(database, holds, ZONE).run()
        start, end = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
        async with database.transaction() as connection:
            fast = [line async for line in canonical_entries(connection, start, end)]
            rows = await connection.fetch(_REFERENCE, start, end)
        reference = [canonical_entry(**dict(row)) for row in rows]
        kinds = {row["kind"] for row in rows} | {"capture" for row in rows if row["hold_id"]}
        return fast, reference, kinds


def test_every_kind_of_entry_is_the_reference_line_byte_for_byte() -> None:
    fast, reference, kinds = asyncio.run(_every_kind_of_entry())
    assert kinds >= {"issue", "redeem", "reversal", "adjustment", "expiry", "settlement"}
    assert "capture" in kinds
    assert any(b'"occurred_at":"999-12-31T23:59:59.999999Z"' in line for line in reference)
    assert any(b'"amount":"' in line for line in reference)  # money, not only points
    assert len(fast) == len(reference) > 10
    for ours, theirs in zip(fast, reference, strict=True):
        assert ours == theirs
