"""The points roll-forward, taken from the period's aggregates in one pass, against the member
postings summed by kind (the independent reading a person would write)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.domain.errors import InsufficientPoints
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import load_contracts
from clearhouse.services.database import Database
from clearhouse.statements.model import CoalitionStatement, RollForward
from tests.conftest import fresh_database
from tests.services.builders import a_ledger, contract_toml, points_request, unique

BERLIN = ZoneInfo("Europe/Berlin")
JAN_START = datetime(2030, 1, 1, tzinfo=BERLIN)
FEB_START = datetime(2030, 2, 1, tzinfo=BERLIN)

_MEMBER_MOVES = """
SELECT
  coalesce(sum(p.amount) FILTER (WHERE coalesce(o.kind, e.kind) = 'issue'), 0) AS issued,
  coalesce(-sum(p.amount) FILTER (WHERE coalesce(o.kind, e.kind) = 'redeem'), 0) AS redeemed,
  coalesce(-sum(p.amount) FILTER (WHERE e.kind = 'expiry'), 0) AS expired,
  coalesce(sum(p.amount) FILTER (WHERE e.kind = 'adjustment'), 0) AS adjusted,
  coalesce(sum(p.amount), 0) AS moved
  FROM entries e
  JOIN postings p ON p.entry_id = e.entry_id
  LEFT JOIN entries o ON o.entry_id = e.reversal_of
 WHERE e.recorded_at >= $1 AND e.recorded_at < $2
   AND p.asset = 'PTS' AND p.account LIKE 'member:%'
"""


async def _member_moves(database: Database) -> tuple[int, int, int, int, int]:
    async with database.driver_connection() as connection:
        row = await connection.fetchrow(
            _MEMBER_MOVES, JAN_START.astimezone(UTC), FEB_START.astimezone(UTC)
        )
    assert row is not None
    return (
        int(row["issued"]),
        int(row["redeemed"]),
        int(row["expired"]),
        int(row["adjusted"]),
        int(row["moved"]),
    )


async def test_the_roll_forward_is_what_the_member_postings_say_by_kind() -> None:
    rng = random.Random(17)
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        partners = [unique("p"), unique("p")]
        await load_contracts(database, [(p, contract_toml(p).encode()) for p in partners])
        members = [unique("m") for _ in range(4)]
        await enrol_members(database, members)
        ledger = a_ledger(database)
        originals = []
        for member in members:
            posted = await ledger.issue(
                rng.choice(partners), points_request(member, 500), idempotency_key=unique("i")
            )
            originals.append(posted.entry)
        for _ in range(30):
            member = rng.choice(members)
            action = rng.random()
            try:
                if action < 0.3:
                    posted = await ledger.issue(
                        rng.choice(partners),
                        points_request(member, rng.randint(1, 90)),
                        idempotency_key=unique("i"),
                    )
                elif action < 0.6:
                    posted = await ledger.redeem(
                        rng.choice(partners),
                        points_request(member, rng.randint(1, 60)),
                        idempotency_key=unique("r"),
                    )
                elif action < 0.75:
                    original = rng.choice(originals)
                    posted = await ledger.reverse(
                        original.partner_id,
                        original.entry_id,
                        points=rng.randint(1, 5),
                        reason="return",
                        idempotency_key=unique("v"),
                    )
                elif action < 0.9:
                    posted = await ledger.adjust(member, rng.choice([-7, -3, 4, 11]), "goodwill")
                else:
                    posted = await ledger.expire(member, rng.randint(1, 20))
            except InsufficientPoints:
                continue
            if posted.entry.kind.value in ("issue", "redeem"):
                originals.append(posted.entry)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        # After the cut-off: moved on the balances, not in January's roll-forward.
        await ledger.adjust(members[0], 5, "after the cut-off")
        await ledger.redeem(partners[0], points_request(members[1], 3), idempotency_key="late")

        clearing = Clearing(
            database, zone=BERLIN, key=CoalitionKey.of(Ed25519PrivateKey.generate())
        )
        settlement = await clearing.settle("2030-01")
        coalition = next(s for s in settlement.statements if s.party == "coalition").body()
        assert isinstance(coalition, CoalitionStatement)
        roll: RollForward = coalition.points_roll_forward
        issued, redeemed, expired, adjusted, moved = await _member_moves(database)
        assert (roll.issued, roll.redeemed, roll.expired, roll.adjusted) == (
            issued,
            redeemed,
            expired,
            adjusted,
        )
        assert adjusted != 0
        assert expired != 0
        assert roll.opening == 0
        assert roll.closing == roll.member_balances_at_cut_off == moved
