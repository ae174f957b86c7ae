"""Netting: lines rounded once, half-even; totals are sums of lines; the period adds up."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.netting import (
    ZERO,
    Aggregate,
    Cohort,
    Expired,
    LineKind,
    PointsRollForward,
    check_settlement,
    coalition_margin,
    net_partner,
)


def cents_half_even(value: Fraction) -> Fraction:
    """Round to cents, ties to even, in exact rational arithmetic (no Decimal involved)."""
    scaled = value * 100
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Fraction(floor, 100)


rates = st.integers(min_value=0, max_value=10**6).map(lambda micro: Fraction(micro, 10**6))


def version(
    number: int,
    issue: Fraction,
    redemption: Fraction,
    fee: Fraction,
    breakage: Fraction = Fraction(0),
) -> ContractVersion:
    def dec(value: Fraction) -> Decimal:
        return Decimal(value.numerator) / Decimal(value.denominator)

    return ContractVersion(
        partner_id="p",
        version=number,
        effective_from=datetime(2026, 1, number, tzinfo=UTC),
        legal_name="P GmbH",
        currency="EUR",
        issue_rate=dec(issue),
        redemption_rate=dec(redemption),
        fee_per_entry=dec(fee),
        max_points_per_transaction=10**9,
        max_points_per_member_per_day=10**9,
        grants={},
        sha256="0" * 64,
        source="",
        breakage_share_rate=dec(breakage),
    )


Month = tuple[list[Aggregate], dict[int, ContractVersion], list[Expired]]


@st.composite
def a_partners_month(draw: st.DrawFn) -> Month:
    numbers = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True))
    versions = {
        n: version(n, draw(rates), draw(rates), draw(rates), draw(st.just(Fraction(0)) | rates))
        for n in numbers
    }
    expired = [Expired("p", n, draw(st.integers(1, 10**7))) for n in numbers if draw(st.booleans())]
    aggregates = []
    for n in numbers:
        for kind in (LineKind.ISSUE, LineKind.REDEMPTION):
            if draw(st.booleans()):
                points = draw(st.integers(0, 10**7))
                reversed_points = draw(st.integers(0, 10**7))  # reversals of earlier months too
                aggregates.append(
                    Aggregate("p", n, kind, points, reversed_points, draw(st.integers(1, 10**5)))
                )
    return aggregates, versions, expired


@given(a_partners_month())
def test_lines_equal_an_exact_recomputation_rounded_half_even_once(month: Month) -> None:
    aggregates, versions, expired = month
    net = net_partner("p", aggregates, versions, expired)
    expected: dict[tuple[int, str], Fraction] = {}
    entries: dict[int, int] = {}
    for a in aggregates:
        terms = versions[a.contract_version]
        rate = terms.issue_rate if a.kind is LineKind.ISSUE else terms.redemption_rate
        expected[(a.contract_version, a.kind.value)] = cents_half_even(
            (a.points - a.reversed_points) * Fraction(rate)
        )
        entries[a.contract_version] = entries.get(a.contract_version, 0) + a.entries
    for number, count in entries.items():
        if versions[number].fee_per_entry:
            expected[(number, "fee")] = cents_half_even(
                count * Fraction(versions[number].fee_per_entry)
            )
    for e in expired:
        share = Fraction(versions[e.contract_version].breakage_share_rate)
        if share:
            expected[(e.contract_version, "breakage")] = cents_half_even(e.points * share)
    got = {(line.contract_version, line.kind.value): Fraction(line.amount) for line in net.lines}
    assert got == expected
    issue = sum((v for (_, k), v in expected.items() if k == "issue"), Fraction(0))
    redemption = sum((v for (_, k), v in expected.items() if k == "redemption"), Fraction(0))
    fees = sum((v for (_, k), v in expected.items() if k == "fee"), Fraction(0))
    breakage = sum((v for (_, k), v in expected.items() if k == "breakage"), Fraction(0))
    assert Fraction(net.net) == redemption + breakage - issue - fees
    assert [(e.contract_version, e.points, Fraction(e.value)) for e in net.expired] == [
        (
            e.contract_version,
            e.points,
            cents_half_even(e.points * Fraction(versions[e.contract_version].issue_rate)),
        )
        for e in sorted(expired, key=lambda e: e.contract_version)
    ]
    assert net.direction == (
        "coalition_pays_partner"
        if net.net > 0
        else "partner_pays_coalition"
        if net.net < 0
        else "nothing_due"
    )


@given(st.lists(a_partners_month(), min_size=1, max_size=4))
def test_the_partners_nets_and_the_margin_add_up_to_zero(months: list[Month]) -> None:
    nets = [net_partner("p", *month) for month in months]
    margin = coalition_margin(nets)
    balanced = PointsRollForward(10, 5, 3, 1, 2, 13)
    assert check_settlement(nets, margin, balanced) == []
    assert sum(n.net for n in nets) + margin == 0


def test_half_even_rounds_ties_to_the_even_cent() -> None:
    tie_down = net_partner(
        "p",
        [Aggregate("p", 1, LineKind.ISSUE, 1, 0, 1)],
        {1: version(1, Fraction(125, 10**4), Fraction(0), Fraction(0))},  # 0.0125
    )
    tie_up = net_partner(
        "p",
        [Aggregate("p", 1, LineKind.ISSUE, 3, 0, 1)],
        {1: version(1, Fraction(125, 10**4), Fraction(0), Fraction(0))},  # 0.0375
    )
    assert tie_down.issue_amount == Decimal("0.01")
    assert tie_up.issue_amount == Decimal("0.04")


def test_a_settlement_that_does_not_add_up_says_every_reason() -> None:
    net = net_partner(
        "p",
        [Aggregate("p", 1, LineKind.REDEMPTION, 100, 0, 1)],
        {1: version(1, Fraction(0), Fraction(1, 100), Fraction(0))},
    )
    broken_roll_forward = PointsRollForward(0, 10, 0, 0, 0, 9)
    problems = check_settlement([net], Decimal("0.50"), broken_roll_forward)
    assert len(problems) == 2
    assert "do not add up to zero" in problems[0]
    assert "roll-forward" in problems[1]


def test_cohorts_that_do_not_close_or_hold_other_than_the_members_are_refused() -> None:
    balanced = PointsRollForward(0, 100, 30, 20, 0, 50)
    closing = Cohort("2026-10", 100, 0, 30, 20, 50, (25, 5))
    assert check_settlement([], ZERO, balanced, [closing]) == []
    short = Cohort("2026-10", 100, 0, 30, 20, 40, (25, 5))
    bent = Cohort("2026-11", 10, 0, 3, 0, 7, (2,))
    assert check_settlement([], ZERO, balanced, [short, bent]) == [
        "the cohort of 2026-10 does not close",
        "the cohort of 2026-11 does not close",
        "the lots hold 47 points at the cut-off but members hold 50",
    ]
