"""Points and money, and the only ways to make them.

Points are the coalition currency: plain Python ``int``, never fractional, never a float.
Money is ``decimal.Decimal`` in the coalition currency, built from strings or integers only
(``to_money``), and rounded to minor units once, half-even, where clearing says so
(``round_minor``). A float anywhere near money is a bug, so ``to_money`` refuses one.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from clearhouse.domain.errors import InvalidRequest

POINTS_ASSET: Final = "PTS"
"""The asset code of points in postings."""

POINTS_PER_ENTRY_MAX: Final = 1_000_000_000
"""No single entry moves more points than this, whatever a contract allows."""

MINOR_UNIT_EXPONENT: Final = Decimal("0.01")
"""Money is settled in cents (two decimal places)."""


def validate_points(points: object, *, name: str = "points") -> int:
    """Return ``points`` if it is a whole, positive number of points within the limit."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidRequest(f"{name} must be a whole number of points", field=name)
    if points <= 0:
        raise InvalidRequest(f"{name} must be positive, not {points}", field=name)
    if points > POINTS_PER_ENTRY_MAX:
        raise InvalidRequest(
            f"{name} must not exceed {POINTS_PER_ENTRY_MAX}, not {points}", field=name
        )
    return points


def to_money(value: str | int | Decimal) -> Decimal:
    """Build a money amount from a decimal string, an integer or a Decimal; never a float."""
    if isinstance(value, bool | float):
        raise TypeError("money is never built from a float or a bool")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise InvalidRequest(f"{value!r} is not a decimal amount") from exc
    if not amount.is_finite():
        raise InvalidRequest(f"{value!r} is not a finite amount")
    return amount


def round_minor(amount: Decimal) -> Decimal:
    """Round once to minor units, half-even (banker's rounding)."""
    return amount.quantize(MINOR_UNIT_EXPONENT, rounding=ROUND_HALF_EVEN)
