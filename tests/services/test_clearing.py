"""Clearing on a real PostgreSQL: close, net, settle, sign, verify; each month in a database of
its own, since it moves the sandbox clock and seals periods."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearhouse.config import SANDBOX_MASTER_KEY
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.errors import (
    InsufficientPoints,
    PeriodClosed,
    PeriodNotEnded,
    Unavailable,
)
from clearhouse.domain.netting import LineKind
from clearhouse.domain.purposes import Purpose
from clearhouse.services import clearing as clearing_module
from clearhouse.services.clearing import Clearing, Settlement
from clearhouse.services.clock import ledger_time, set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.members import ConsentStatement, Members
from clearhouse.services.posting import PointsRequest
from clearhouse.services.retention import run_retention
from clearhouse.statements.model import CoalitionStatement, PartnerStatement, RollForward
from tests.conftest import fresh_database
from tests.domain.test_netting import cents_half_even
from tests.services.builders import a_ledger, contract_toml, points_request, unique
from tests.statements.schema_check import assert_served_as_the_schema_says

BERLIN = ZoneInfo("Europe/Berlin")
JANUARY = "2030-01"
JAN_START = datetime(2030, 1, 1, tzinfo=BERLIN)
FEB_START = datetime(2030, 2, 1, tzinfo=BERLIN)
MID_JANUARY = datetime(2030, 1, 15, tzinfo=BERLIN)


def clearing_of(database: Database) -> Clearing:
    return Clearing(database, zone=BERLIN, key=CoalitionKey.of(Ed25519PrivateKey.generate()))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def independent_lines(
    database: Database, start: datetime, end: datetime
) -> dict[tuple[str, int, str], Fraction]:
    """Each statement line recomputed from the raw postings: net points moved on the partners'
    issued and redeemed accounts, per contract version, times the rate, rounded half-even."""
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            """
            SELECT e.partner_id, e.contract_version,
                   CASE WHEN p.account LIKE '%:issued' THEN 'issue' ELSE 'redemption' END AS kind,
                   sum(CASE WHEN p.account LIKE '%:issued' THEN -p.amount ELSE p.amount END) AS net,
                   min(CASE WHEN p.account LIKE '%:issued' THEN c.issue_rate
                            ELSE c.redemption_rate END) AS rate
              FROM postings p
              JOIN entries e USING (entry_id)
              JOIN contract_versions c
                ON c.partner_id = e.partner_id AND c.version = e.contract_version
             WHERE e.recorded_at >= $1 AND e.recorded_at < $2
               AND (p.account LIKE 'partner:%:issued' OR p.account LIKE 'partner:%:redeemed')
             GROUP BY 1, 2, 3
            """,
            start,
            end,
        )
    return {
        (r["partner_id"], r["contract_version"], r["kind"]): cents_half_even(
            Fraction(int(r["net"])) * Fraction(r["rate"])
        )
        for r in rows
    }


rates = st.integers(min_value=0, max_value=99_999).map(lambda micro: f"0.{micro:06d}")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(rates, min_size=6, max_size=6),
    seed=st.integers(0, 2**32),
)
def test_a_random_month_settles_to_what_the_raw_postings_say(rates: list[str], seed: int) -> None:
    asyncio.run(_random_month(rates, random.Random(seed)))


async def _random_month(rates: list[str], rng: random.Random) -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        bakery, shop = unique("bakery"), unique("shop")
        files = [
            (f"{bakery}.v1", contract_toml(bakery, issue_rate=rates[0], redemption_rate=rates[1])),
            (
                f"{bakery}.v2",
                contract_toml(
                    bakery,
                    version=2,
                    effective_from=rfc3339(MID_JANUARY),
                    issue_rate=rates[2],
                    redemption_rate=rates[3],
                ),
            ),
            (f"{shop}.v1", contract_toml(shop, issue_rate=rates[4], redemption_rate=rates[5])),
        ]
        await load_contracts(database, [(n, t.encode()) for n, t in files])
        ledger = a_ledger(database)
        members = [unique("m") for _ in range(6)]
        await enrol_members(database, members)
        entries = []

        async def traffic(count: int) -> None:
            for _ in range(count):
                partner, member = rng.choice([bakery, shop]), rng.choice(members)
                request = points_request(member, rng.randint(1, 900))
                action = rng.random()
                try:
                    if action < 0.55:
                        posted = await ledger.issue(partner, request, idempotency_key=unique("i"))
                    elif action < 0.85:
                        posted = await ledger.redeem(partner, request, idempotency_key=unique("r"))
                    elif entries:
                        original = rng.choice(entries)
                        posted = await ledger.reverse(
                            original.partner_id,
                            original.entry_id,
                            points=rng.choice([None, 1, 2, 5]),
                            reason="return",
                            idempotency_key=unique("v"),
                        )
                    else:
                        continue
                except InsufficientPoints:
                    continue
                if posted.entry.kind.value != "reversal":
                    entries.append(posted.entry)

        await traffic(40)
        await set_ledger_time(database, sandbox=True, at=MID_JANUARY + timedelta(hours=2))
        await traffic(40)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        await traffic(15)  # reversals of January's entries, recorded in February
        clearing = clearing_of(database)
        settlement = await clearing.settle(JANUARY)
        bodies = [s.body() for s in settlement.statements]
        lines = {
            (body.partner_id, line.contract_version, line.kind.value): Fraction(line.amount)
            for body in bodies
            if isinstance(body, PartnerStatement)
            for line in body.lines
            if line.kind is not LineKind.FEE
        }
        start, end = JAN_START.astimezone(UTC), FEB_START.astimezone(UTC)
        assert lines == await independent_lines(database, start, end)
        coalition = next(b for b in bodies if isinstance(b, CoalitionStatement))
        assert coalition.multilateral_check == "0.00"
        assert Fraction(coalition.partners_net_total) == -Fraction(coalition.coalition_margin)
        roll = coalition.points_roll_forward
        assert roll.closing == roll.member_balances_at_cut_off
        for statement in settlement.statements:
            assert_served_as_the_schema_says(json.loads(statement.served_json()))
        again = await clearing_of(database).settle(JANUARY)
        assert [s.document for s in again.statements] == [s.document for s in settlement.statements]
        assert again.settled_now is False


async def _a_month(database: Database) -> tuple[Clearing, list[str]]:
    await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
    partners = [unique("p"), unique("p")]
    await load_contracts(
        database, [(p, contract_toml(p, issue_rate="0.0125").encode()) for p in partners]
    )
    ledger = a_ledger(database)
    from clearhouse.services.coalition import enrol_members

    member = unique("m")
    await enrol_members(database, [member])
    await ledger.issue(partners[0], points_request(member, 1000), idempotency_key="a")
    await ledger.redeem(partners[1], points_request(member, 400), idempotency_key="b")
    return clearing_of(database), partners


async def test_closing_before_the_end_is_refused_and_after_it_nothing_lands() -> None:
    async with fresh_database() as database:
        clearing, partners = await _a_month(database)
        with pytest.raises(PeriodNotEnded):
            await clearing.close(JANUARY)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        sealed = await clearing.close(JANUARY)
        assert sealed.entry_count == 2
        # Back in January on the sandbox clock: the period is closed, nothing lands in it.
        await set_ledger_time(database, sandbox=True, at=FEB_START - timedelta(hours=1))
        member = unique("m")
        await enrol_members(database, [member])
        with pytest.raises(PeriodClosed):
            await a_ledger(database).issue(
                partners[0], points_request(member, 1), idempotency_key="late"
            )
        assert (await clearing.verify()).verifies


async def test_entries_racing_the_month_end_land_in_exactly_one_period() -> None:
    async with fresh_database() as database:
        clearing, partners = await _a_month(database)
        await set_ledger_time(database, sandbox=True, at=FEB_START - timedelta(milliseconds=400))
        ledger = a_ledger(database)
        member = unique("m")
        await enrol_members(database, [member])
        stop = asyncio.Event()
        outcomes: list[str] = []

        async def keep_issuing(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    await ledger.issue(
                        partners[0], points_request(member, 1), idempotency_key=f"{worker}-{n}"
                    )
                    outcomes.append("ok")
                except PeriodClosed:
                    outcomes.append("closed")

        async def close_when_ended() -> None:
            while await ledger_time(database) < FEB_START:  # noqa: ASYNC110 (polls the database)
                await asyncio.sleep(0.02)
            await clearing.close(JANUARY)
            await asyncio.sleep(0.3)
            stop.set()

        await asyncio.gather(close_when_ended(), *(keep_issuing(w) for w in range(6)))
        sealed = (await clearing.periods())[0]
        async with database.driver_connection() as connection:
            in_january = await connection.fetchval(
                "SELECT count(*) FROM entries WHERE recorded_at < $1", FEB_START
            )
        assert outcomes.count("ok") > 0
        assert in_january == sealed.entry_count
        assert (await clearing.verify()).verifies


async def test_an_interrupted_settlement_wrote_nothing_and_a_rerun_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_database() as database:
        clearing, _ = await _a_month(database)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        calls = 0
        real = clearing_module.sign_statement

        def dies_on_the_second(*args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise asyncpg.ConnectionDoesNotExistError("the connection was killed")
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(clearing_module, "sign_statement", dies_on_the_second)
        with pytest.raises(Unavailable):
            await clearing.settle(JANUARY)
        async with database.driver_connection() as connection:
            assert await connection.fetchval("SELECT count(*) FROM statements") == 0
            assert (
                await connection.fetchval("SELECT count(*) FROM entries WHERE kind = 'settlement'")
                == 0
            )
        monkeypatch.setattr(clearing_module, "sign_statement", real)
        settlement = await clearing.settle(JANUARY)
        async with database.driver_connection() as connection:
            settled = await connection.fetchval(
                "SELECT count(*) FROM entries WHERE kind = 'settlement'"
            )
        assert settled == 2
        assert len(settlement.statements) == 3
        assert (await clearing.verify()).verifies


async def test_verify_names_a_tampered_entry_statement_and_signature(dsn: str) -> None:
    async with fresh_database() as database:
        clearing, partners = await _a_month(database)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        await clearing.settle(JANUARY)
        assert (await clearing.verify()).verifies
        url = database.engine.url.set(drivername="postgresql")
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await connection.execute(
                "ALTER TABLE statements DISABLE TRIGGER statements_append_only"
            )
            await connection.execute(
                "UPDATE statements SET signature = set_byte(signature, 0,"
                " (get_byte(signature, 0) + 1) % 256) WHERE party = $1",
                partners[0],
            )
            await connection.execute(
                "UPDATE statements SET document = document || ' '::bytea WHERE party = $1",
                partners[1],
            )
            await connection.execute("ALTER TABLE entries DISABLE TRIGGER entries_append_only")
            await connection.execute("UPDATE entries SET points = points + 1 WHERE kind = 'issue'")
        finally:
            await connection.close()
        problems = [str(f) for f in (await clearing.verify()).findings]
        assert any("ledger root does not match" in p for p in problems)
        assert any(f"statement {partners[0]}: its signature" in p for p in problems)
        assert any(f"statement {partners[1]}: its SHA-256" in p for p in problems)


async def test_roots_and_signatures_verify_after_retention_and_erasure() -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        partner = unique("p")
        await load_contracts(database, [(partner, contract_toml(partner).encode())])
        members = Members(database, ContractBook(database), SANDBOX_MASTER_KEY)
        enrolled = await members.enrol(
            partner,
            member_id=None,
            personal={"email": "x@example.org"},
            consents=[ConsentStatement(Purpose.MARKETING, True)],
            idempotency_key="e",
        )
        request = points_request(enrolled.member_id, 10)
        posted = await a_ledger(database).issue(
            partner,
            PointsRequest(request.member_id, 10, request.occurred_at, "r", '{"a": 1}'),
            idempotency_key="i",
        )
        async with database.driver_connection() as connection:
            # What a partner sent for marketing: kept 30 days by its contract.
            await connection.execute(
                "UPDATE entry_metadata SET purpose = 'marketing' WHERE entry_id = $1",
                posted.entry.entry_id,
            )
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(days=400))
        clearing = clearing_of(database)
        await clearing.settle(JANUARY)
        await members.erase(enrolled.member_id)
        removed = await run_retention(database)
        assert [(r.partner_id, r.removed) for r in removed] == [(partner, 1)]
        assert (await clearing.verify()).verifies


async def test_a_months_opening_is_the_previous_months_closing() -> None:
    async with fresh_database() as database:
        clearing, partners = await _a_month(database)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(hours=1))
        member = unique("m")
        await enrol_members(database, [member])
        await a_ledger(database).issue(
            partners[0], points_request(member, 250), idempotency_key="f"
        )
        january = await clearing.settle(JANUARY)
        await set_ledger_time(
            database, sandbox=True, at=datetime(2030, 3, 1, tzinfo=BERLIN) + timedelta(seconds=1)
        )
        february = await clearing.settle("2030-02")

        def roll(settlement: Settlement) -> RollForward:
            coalition = next(s for s in settlement.statements if s.party == "coalition").body()
            assert isinstance(coalition, CoalitionStatement)
            return coalition.points_roll_forward

        assert roll(february).opening == roll(january).closing == 600
        assert roll(february).issued == 250
        assert roll(february).closing == roll(february).member_balances_at_cut_off == 850
        assert (await clearing.verify()).verifies
