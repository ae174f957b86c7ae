"""Holds in clearing: closing does not wait for them, a capture lands in the month it is recorded
in, and the coalition statement names the holds open at the cut-off while the roll-forward
stays as the balances say."""

from __future__ import annotations

from datetime import timedelta

from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook
from clearhouse.services.holds import HoldRequest, Holds
from clearhouse.statements.model import CoalitionStatement
from tests.conftest import fresh_database
from tests.services.builders import OCCURRED_AT, a_ledger, a_partner, points_request, unique
from tests.services.test_clearing import FEB_START, JAN_START, JANUARY, clearing_of


async def test_holds_open_at_the_cut_off_are_named_and_a_later_capture_lands_in_its_month() -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        partner = await a_partner(database)
        member = unique("m")
        await enrol_members(database, [member])
        ledger = a_ledger(database)
        holds = Holds(database, ContractBook(database), ledger)
        await ledger.issue(partner, points_request(member, 1_000), idempotency_key="seed")

        def hold(points: int, seconds: int) -> HoldRequest:
            return HoldRequest(member, points, OCCURRED_AT, "pump", hold_seconds=seconds)

        # Three holds near the month's end: one ends before it, one is captured after it, and
        # one expires before the cut-off without a sweep (it is not open at the cut-off).
        await set_ledger_time(database, sandbox=True, at=FEB_START - timedelta(hours=2))
        voided = await holds.authorize(partner, hold(100, 86_400), idempotency_key="h1")
        across = await holds.authorize(partner, hold(250, 86_400), idempotency_key="h2")
        await holds.authorize(partner, hold(40, 600), idempotency_key="h3")
        await holds.void(partner, voided.hold.hold_id, "cancelled", idempotency_key="v1")

        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        clearing = clearing_of(database)
        # Closing does not wait for the open hold.
        sealed = await clearing.close(JANUARY)
        assert sealed.entry_count == 1
        captured = await holds.capture(partner, across.hold.hold_id, 200, idempotency_key="c1")
        assert captured.entry is not None
        assert captured.entry.recorded_at >= FEB_START  # February's, not January's

        settlement = await clearing.settle(JANUARY)
        (coalition,) = [
            s.body() for s in settlement.statements if isinstance(s.body(), CoalitionStatement)
        ]
        assert isinstance(coalition, CoalitionStatement)
        assert (coalition.open_holds_at_cut_off.holds, coalition.open_holds_at_cut_off.points) == (
            1,
            250,
        )
        # The held points are still in the balances: the roll-forward closes on them.
        roll = coalition.points_roll_forward
        assert (roll.issued, roll.redeemed, roll.closing) == (1_000, 0, 1_000)
        assert roll.member_balances_at_cut_off == 1_000
        assert (await clearing.verify(JANUARY)).verifies
