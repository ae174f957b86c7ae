"""The console's charts as geometry: bars proportional to their figures on one scale, either
side of a zero axis, labelled with the figures as given (expected pixels worked out by hand)."""

from __future__ import annotations

from decimal import Decimal

from clearhouse.web.console import charts


def test_net_positions_diverge_from_zero_on_one_scale() -> None:
    chart = charts.diverging(
        [("Bakery", Decimal("-7.00"), "-7.00 EUR"), ("Fuel", Decimal("1.60"), "1.60 EUR")]
    )
    # 440 px for the span from -7.00 to 1.60 (8.60): 51.16 px per euro.
    assert chart.zero_x == 558  # 200 + 7.00 x 51.16 = 558.1
    bakery, fuel = chart.bars
    assert (bakery.x, bakery.width, bakery.tone, bakery.value) == (
        200,
        358,
        "negative",
        "-7.00 EUR",
    )
    assert (fuel.x, fuel.width, fuel.tone, fuel.value) == (558, 82, "positive", "1.60 EUR")
    assert (bakery.y, fuel.y) == (0, 30)


def test_a_roll_forward_floats_each_step_from_where_the_last_ended() -> None:
    chart = charts.waterfall(
        0, [("Issued", 700), ("Redeemed", -200), ("Expired", 0), ("Adjustments", 0)], "Closing"
    )
    shown = [(b.label, b.x, b.width, b.value) for b in chart.bars]
    # 440 px for 0..700 points: 0.6286 px per point; 500 points end at 200 + 314.3.
    assert shown == [
        ("Opening", 200, 0, "0"),
        ("Issued", 200, 440, "+700"),
        ("Redeemed", 514, 126, "-200"),
        ("Expired", 514, 0, "0"),
        ("Adjustments", 514, 0, "0"),
        ("Closing", 200, 314, "500"),
    ]


def test_a_long_label_is_shortened_and_nothing_is_drawn_for_no_partner() -> None:
    chart = charts.diverging([("A" * 40, Decimal("1"), "1.00")])
    assert chart.bars[0].label == "A" * 29 + "…"
    assert charts.diverging([]).bars == ()
