"""The console's charts as geometry for inline SVG: no script draws them, so they show with
JavaScript off and under a strict Content-Security-Policy. Pure: values in, rectangles out.

Coordinates are whole pixels computed from ``Decimal`` values; a chart never changes a number
it shows (each bar's label is the value as given)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

WIDTH = 640
LABEL_W = 200
BAR_H = 22
GAP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: str
    x: int
    y: int
    width: int
    height: int
    tone: str
    """``positive``, ``negative`` or ``total`` (a CSS class)."""


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    zero_x: int
    bars: tuple[Bar, ...]


LABEL_CHARS = 30


def _short(label: str) -> str:
    """A label that fits left of the bars (the table beside the chart has it whole)."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _px(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def diverging(rows: Sequence[tuple[str, Decimal, str]]) -> Chart:
    """Horizontal bars either side of zero, one per ``(label, value, shown)``: net positions,
    where a positive net is what the coalition pays the partner."""
    span = WIDTH - LABEL_W
    low = min([Decimal(0), *(v for _, v, _ in rows)])
    high = max([Decimal(0), *(v for _, v, _ in rows)])
    scale = Decimal(span) / (high - low) if high > low else Decimal(0)
    zero_x = LABEL_W + _px(-low * scale)
    bars = []
    for index, (label, value, shown) in enumerate(rows):
        length = _px(abs(value) * scale)
        x = zero_x if value >= 0 else zero_x - length
        tone = "positive" if value > 0 else "negative" if value < 0 else "total"
        bars.append(Bar(_short(label), shown, x, index * (BAR_H + GAP), length, BAR_H, tone))
    return Chart(WIDTH, max(1, len(rows)) * (BAR_H + GAP), zero_x, tuple(bars))


def waterfall(opening: int, steps: Sequence[tuple[str, int]], closing_label: str) -> Chart:
    """A roll-forward: the opening bar, one floating bar per signed step, the closing bar."""
    running = [opening]
    for _, change in steps:
        running.append(running[-1] + change)
    high = max([0, *running])
    low = min([0, *running])
    span = WIDTH - LABEL_W
    scale = Decimal(span) / Decimal(high - low) if high > low else Decimal(0)

    def x_of(points: int) -> int:
        return LABEL_W + _px(Decimal(points - low) * scale)

    rows: list[tuple[str, int, int, str, int]] = [
        ("Opening", min(0, opening), max(0, opening), "total", opening)
    ]
    for (label, change), before, after in zip(steps, running[:-1], running[1:], strict=True):
        tone = "positive" if change > 0 else "negative" if change < 0 else "total"
        rows.append((label, min(before, after), max(before, after), tone, change))
    closing = running[-1]
    rows.append((closing_label, min(0, closing), max(0, closing), "total", closing))
    bars = tuple(
        Bar(
            label,
            f"{value:+,}" if tone != "total" else f"{value:,}",
            x_of(start),
            index * (BAR_H + GAP),
            max(x_of(end) - x_of(start), 1 if value else 0),
            BAR_H,
            tone,
        )
        for index, (label, start, end, tone, value) in enumerate(rows)
    )
    return Chart(WIDTH, len(rows) * (BAR_H + GAP), x_of(0), bars)
