"""Properties of the ledger's pure domain: posting rules, reversals, points, money, periods, ids.

No database. The expectations come from SPEC section 3 and docs/ledger.md (which account is
debited and which credited), computed here independently of the implementation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from clearhouse.domain.errors import InsufficientPoints, InvalidRequest
from clearhouse.domain.ledger import (
    EntryDraft,
    EntryKind,
    Posting,
    RecordedEntry,
    adjust_points,
    expire_points,
    issue_points,
    redeem_points,
    reverse_entry,
    validate_identifier,
)
from clearhouse.domain.money import (
    POINTS_ASSET,
    POINTS_PER_ENTRY_MAX,
    round_minor,
    to_money,
    validate_points,
)
from clearhouse.domain.periods import period_bounds, period_of

BERLIN = ZoneInfo("Europe/Berlin")

REFUSED_IN_IDS = ":/?#%\\"
"""Account names use ':'; the others cannot be one segment of a URL path."""
identifiers = st.text(
    alphabet=st.characters(
        min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=REFUSED_IN_IDS
    ),
    min_size=1,
    max_size=64,
)
points = st.one_of(
    st.integers(min_value=1, max_value=1_000),
    st.integers(min_value=1, max_value=POINTS_PER_ENTRY_MAX),
)
signed_points = st.one_of(points, points.map(lambda n: -n))


def _sums_per_asset(postings: tuple[Posting, ...]) -> dict[str, int | Decimal]:
    sums: dict[str, int | Decimal] = defaultdict(int)
    for posting in postings:
        sums[posting.asset] += posting.amount
    return dict(sums)


def _sums_per_account(postings: tuple[Posting, ...]) -> dict[str, int | Decimal]:
    sums: dict[str, int | Decimal] = defaultdict(int)
    for posting in postings:
        sums[posting.account] += posting.amount
    return dict(sums)


def _assert_well_formed(draft: EntryDraft) -> None:
    """Balanced per asset, whole points, and the member delta is the member's postings."""
    assert len(draft.postings) >= 2
    assert all(total == 0 for total in _sums_per_asset(draft.postings).values())
    for posting in draft.postings:
        assert posting.asset == POINTS_ASSET
        assert type(posting.amount) is int
        assert posting.amount != 0
    on_member = [p.amount for p in draft.postings if p.account == f"member:{draft.member_id}"]
    assert draft.member_delta_points == sum(on_member)
    assert draft.points > 0


def _recorded(draft: EntryDraft, reversed_points: int = 0) -> RecordedEntry:
    """The entry as the database would hand it back to a reversal."""
    return RecordedEntry(
        entry_id=uuid4(),
        kind=draft.kind,
        partner_id=draft.partner_id,
        member_id=draft.member_id,
        points=draft.points,
        postings=draft.postings,
        reversed_points=reversed_points,
    )


# --- the posting rules -------------------------------------------------------------------------


@given(partner=identifiers, member=identifiers, n=points)
def test_issue_credits_the_member_and_debits_the_partners_issued_account(
    partner: str, member: str, n: int
) -> None:
    draft = issue_points(partner, member, n)
    _assert_well_formed(draft)
    assert draft.kind is EntryKind.ISSUE
    assert (draft.partner_id, draft.member_id, draft.points) == (partner, member, n)
    assert _sums_per_account(draft.postings) == {
        f"partner:{partner}:issued": -n,
        f"member:{member}": n,
    }
    assert draft.member_delta_points == n
    assert draft.reversal_of is None


@given(partner=identifiers, member=identifiers, n=points)
def test_redeem_debits_the_member_and_credits_the_partners_redeemed_account(
    partner: str, member: str, n: int
) -> None:
    draft = redeem_points(partner, member, n)
    _assert_well_formed(draft)
    assert draft.kind is EntryKind.REDEEM
    assert (draft.partner_id, draft.member_id, draft.points) == (partner, member, n)
    assert _sums_per_account(draft.postings) == {
        f"member:{member}": -n,
        f"partner:{partner}:redeemed": n,
    }
    assert draft.member_delta_points == -n


@given(member=identifiers, n=points)
def test_expiry_moves_points_from_the_member_to_breakage(member: str, n: int) -> None:
    draft = expire_points(member, n)
    _assert_well_formed(draft)
    assert draft.kind is EntryKind.EXPIRY
    assert draft.partner_id is None
    assert _sums_per_account(draft.postings) == {f"member:{member}": -n, "coalition:breakage": n}
    assert draft.member_delta_points == -n


@given(member=identifiers, n=signed_points)
def test_adjustment_moves_the_signed_points_between_adjustments_and_the_member(
    member: str, n: int
) -> None:
    draft = adjust_points(member, n)
    _assert_well_formed(draft)
    assert draft.kind is EntryKind.ADJUSTMENT
    assert draft.partner_id is None
    assert draft.points == abs(n)
    assert _sums_per_account(draft.postings) == {
        f"member:{member}": n,
        "coalition:adjustments": -n,
    }
    assert draft.member_delta_points == n


bad_points = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=POINTS_PER_ENTRY_MAX + 1),
    st.booleans(),
    st.floats(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.none(),
)


@given(value=bad_points)
@example(value=0)
@example(value=-1)
@example(value=True)
@example(value=1.0)
@example(value=POINTS_PER_ENTRY_MAX + 1)
def test_validate_points_refuses_anything_but_a_positive_int_within_the_limit(
    value: object,
) -> None:
    with pytest.raises(InvalidRequest):
        validate_points(value)


@given(n=points)
@example(n=1)
@example(n=POINTS_PER_ENTRY_MAX)
def test_validate_points_accepts_every_int_from_one_to_the_limit(n: int) -> None:
    assert validate_points(n) == n


@given(partner=identifiers, member=identifiers, value=bad_points)
def test_every_rule_refuses_bad_points(partner: str, member: str, value: object) -> None:
    with pytest.raises(InvalidRequest):
        issue_points(partner, member, value)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        redeem_points(partner, member, value)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        expire_points(member, value)  # type: ignore[arg-type]


@given(
    member=identifiers,
    value=st.one_of(
        st.just(0),
        st.booleans(),
        st.floats(),
        st.integers(min_value=POINTS_PER_ENTRY_MAX + 1),
        st.integers(max_value=-POINTS_PER_ENTRY_MAX - 1),
    ),
)
def test_adjustment_refuses_zero_bools_floats_and_amounts_beyond_the_limit(
    member: str, value: object
) -> None:
    with pytest.raises(InvalidRequest):
        adjust_points(member, value)  # type: ignore[arg-type]


# --- reversals ---------------------------------------------------------------------------------

reversible_drafts = st.one_of(
    st.builds(issue_points, identifiers, identifiers, points),
    st.builds(redeem_points, identifiers, identifiers, points),
)


@given(original=reversible_drafts, data=st.data())
def test_partial_reversals_in_any_sequence_never_exceed_the_original(
    original: EntryDraft, data: st.DataObject
) -> None:
    entry = _recorded(original)
    reversed_so_far = 0
    reversal_postings: list[Posting] = []
    member_sign = 1 if original.kind is EntryKind.ISSUE else -1
    for _ in range(data.draw(st.integers(min_value=0, max_value=8), label="attempts")):
        remaining = original.points - reversed_so_far
        entry = _recorded(original, reversed_so_far)
        if remaining < POINTS_PER_ENTRY_MAX and data.draw(st.booleans(), label="too many?"):
            asked = data.draw(
                st.integers(min_value=remaining + 1, max_value=POINTS_PER_ENTRY_MAX),
                label="more than remains",
            )
            with pytest.raises(InsufficientPoints):
                reverse_entry(entry, asked)
            continue
        if remaining == 0:
            with pytest.raises(InsufficientPoints):
                reverse_entry(entry, None)
            continue
        asked_or_all = data.draw(
            st.one_of(st.none(), st.integers(min_value=1, max_value=remaining)), label="points"
        )
        draft = reverse_entry(entry, asked_or_all)
        expected = remaining if asked_or_all is None else asked_or_all
        _assert_well_formed(draft)
        assert draft.kind is EntryKind.REVERSAL
        assert draft.reversal_of == entry.entry_id
        assert (draft.partner_id, draft.member_id) == (original.partner_id, original.member_id)
        assert draft.points == expected
        assert draft.member_delta_points == -member_sign * expected
        reversed_so_far += expected
        reversal_postings.extend(draft.postings)
        assert reversed_so_far <= original.points

    unreversed = original.points - reversed_so_far
    together = _sums_per_account(original.postings + tuple(reversal_postings))
    assert together == {
        p.account: (1 if p.amount > 0 else -1) * unreversed for p in original.postings
    }


@given(original=reversible_drafts, data=st.data())
def test_reversing_more_than_remains_is_insufficient_points(
    original: EntryDraft, data: st.DataObject
) -> None:
    already = data.draw(st.integers(min_value=0, max_value=original.points), label="reversed")
    remaining = original.points - already
    assume(remaining < POINTS_PER_ENTRY_MAX)  # above the limit points are an invalid request
    asked = data.draw(
        st.integers(min_value=remaining + 1, max_value=POINTS_PER_ENTRY_MAX), label="asked"
    )
    with pytest.raises(InsufficientPoints):
        reverse_entry(_recorded(original, already), asked)


@given(original=reversible_drafts)
def test_reversing_all_of_a_fully_reversed_entry_is_insufficient_points(
    original: EntryDraft,
) -> None:
    with pytest.raises(InsufficientPoints):
        reverse_entry(_recorded(original, original.points), None)


not_reversible_drafts = st.one_of(
    st.builds(expire_points, identifiers, points),
    st.builds(adjust_points, identifiers, signed_points),
    reversible_drafts.map(lambda d: reverse_entry(_recorded(d), None)),
)


@given(original=not_reversible_drafts, asked=st.one_of(st.none(), st.integers(1, 10)))
def test_expiries_adjustments_and_reversals_cannot_be_reversed(
    original: EntryDraft, asked: int | None
) -> None:
    assert original.kind in {EntryKind.EXPIRY, EntryKind.ADJUSTMENT, EntryKind.REVERSAL}
    with pytest.raises(InvalidRequest):
        reverse_entry(_recorded(original), asked)


# --- money ---------------------------------------------------------------------------------------


@given(value=st.floats())
@example(value=0.0)
@example(value=1.5)
def test_to_money_refuses_floats(value: float) -> None:
    with pytest.raises(TypeError):
        to_money(value)  # type: ignore[arg-type]


@given(cents=st.integers(min_value=-(10**15), max_value=10**15))
def test_to_money_keeps_decimal_strings_and_ints_exactly(cents: int) -> None:
    text = f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    assert to_money(text) == Decimal(cents) / 100
    assert to_money(cents) == Decimal(cents)


@st.composite
def scaled_decimals(draw: st.DrawFn) -> tuple[int, int]:
    """An amount as ``(digits, places)``, i.e. digits * 10**-places; often exactly on a tie."""
    places = draw(st.integers(min_value=0, max_value=9))
    if places >= 3 and draw(st.booleans()):
        unit = 10 ** (places - 2)  # one cent, in the amount's scale
        cents = draw(st.integers(min_value=-(10**15), max_value=10**15))
        sign = -1 if cents < 0 else 1
        return cents * unit + sign * unit // 2, places  # exactly half a cent away from zero
    return draw(st.integers(min_value=-(10**20), max_value=10**20)), places


def _half_even_cents(digits: int, places: int) -> int:
    """Round digits * 10**-places to whole cents, half to even, in integer arithmetic only."""
    if places <= 2:
        scale: int = 10 ** (2 - places)
        return digits * scale
    unit: int = 10 ** (places - 2)
    quotient, rest = divmod(abs(digits), unit)
    if 2 * rest > unit or (2 * rest == unit and quotient % 2 == 1):
        quotient += 1
    return -quotient if digits < 0 else quotient


@given(amount=scaled_decimals())
@example(amount=(5, 3))  # 0.005 -> 0.00
@example(amount=(15, 3))  # 0.015 -> 0.02
@example(amount=(25, 3))  # 0.025 -> 0.02
@example(amount=(-25, 3))  # -0.025 -> -0.02
@example(amount=(2_500_001, 8))  # just over half a cent -> 0.03
def test_round_minor_rounds_to_cents_half_to_even(amount: tuple[int, int]) -> None:
    digits, places = amount
    rounded = round_minor(Decimal(digits).scaleb(-places))
    assert rounded == Decimal(_half_even_cents(digits, places)).scaleb(-2)
    assert rounded.as_tuple().exponent == -2


# --- periods -------------------------------------------------------------------------------------


def _next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


@st.composite
def instants_near_berlin_clock_changes(draw: st.DrawFn) -> datetime:
    """Within hours of a DST change of Europe/Berlin (last Sunday of March and of October)."""
    year = draw(st.integers(min_value=1996, max_value=2100))
    month = draw(st.sampled_from([3, 10]))
    last_sunday = max(
        day for day in range(25, 32) if datetime(year, month, day, tzinfo=UTC).weekday() == 6
    )
    change = datetime(year, month, last_sunday, 1, tzinfo=UTC)  # 01:00 UTC both ways in the EU
    return change + timedelta(seconds=draw(st.integers(min_value=-4 * 3600, max_value=4 * 3600)))


@st.composite
def instants_near_berlin_month_starts(draw: st.DrawFn) -> datetime:
    """Within a day of local midnight on the first of a month in Berlin."""
    start = datetime(
        draw(st.integers(min_value=1001, max_value=9998)),
        draw(st.integers(min_value=1, max_value=12)),
        1,
        tzinfo=BERLIN,
    )
    offset = timedelta(microseconds=draw(st.integers(-86_400_000_000, 86_400_000_000)))
    return (start + offset).astimezone(UTC)


instants = st.one_of(
    st.datetimes(
        min_value=datetime(1000, 1, 2),  # noqa: DTZ001 - the bounds of a strategy, naive by API
        max_value=datetime(9998, 12, 31),  # noqa: DTZ001
        timezones=st.one_of(st.just(UTC), st.timezones()),
    ),
    instants_near_berlin_clock_changes(),
    instants_near_berlin_month_starts(),
)


@given(instant=instants)
@example(instant=datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC))  # last second of CET in March
@example(instant=datetime(2026, 10, 25, 1, 0, tzinfo=UTC))  # first second of CET in October
@example(instant=datetime(2026, 11, 30, 23, 0, tzinfo=UTC))  # December begins in Berlin
@example(instant=datetime(2026, 11, 30, 22, 59, 59, 999_999, tzinfo=UTC))  # still November
def test_an_instant_lies_within_the_bounds_of_its_own_period(instant: datetime) -> None:
    period = period_of(instant, BERLIN)
    assert re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", period, flags=re.ASCII)
    start, end = period_bounds(period, BERLIN)
    assert start.utcoffset() == timedelta(0)
    assert end.utcoffset() == timedelta(0)
    assert start <= instant < end
    assert period_of(start, BERLIN) == period
    assert period_of(end - timedelta(microseconds=1), BERLIN) == period
    assert period_of(end, BERLIN) == _next_period(period)


@given(
    year=st.integers(min_value=1000, max_value=9998), month=st.integers(min_value=1, max_value=12)
)
def test_consecutive_periods_meet_without_gap_and_last_a_calendar_month(
    year: int, month: int
) -> None:
    period = f"{year:04d}-{month:02d}"
    start, end = period_bounds(period, BERLIN)
    next_start, _ = period_bounds(_next_period(period), BERLIN)
    assert end == next_start
    days = (end - start).total_seconds() / 86_400
    assert 28 - 1 / 24 <= days <= 31 + 1 / 24  # a DST change moves a month by one hour


def _is_a_period(text: str) -> bool:
    return re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text, flags=re.ASCII) is not None


@given(text=st.text(max_size=12).filter(lambda t: not _is_a_period(t)))
@example(text="2026-13")
@example(text="2026-00")
@example(text="2026-1")
@example(text="26-01")
@example(text="2026/01")
@example(text=" 2026-01")
@example(text="2026-01 ")
@example(text="2026-01\n")  # a trailing newline is not part of YYYY-MM
@example(text="\uff12\uff10\uff12\uff16-01")  # fullwidth digits are not ASCII digits
@example(text="\u0662\u0660\u0662\u0666-01")  # nor are Arabic-Indic digits
@example(text="0000-01")  # there is no year 0
def test_a_string_that_is_not_a_yyyy_mm_period_is_an_invalid_request(text: str) -> None:
    with pytest.raises(InvalidRequest):
        period_bounds(text, BERLIN)


def test_period_of_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="time zone"):
        period_of(datetime(2026, 11, 3, 10, 15), BERLIN)  # noqa: DTZ001 - naive on purpose


# --- identifiers ---------------------------------------------------------------------------------


@given(value=identifiers)
def test_validate_identifier_accepts_printable_ascii_without_spaces_or_path_characters(
    value: str,
) -> None:
    assert validate_identifier(value, name="member_id") == value


@given(
    value=st.one_of(
        st.just(""),
        st.text(
            alphabet=st.characters(
                min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=REFUSED_IN_IDS
            ),
            min_size=65,
            max_size=200,
        ),
        st.tuples(identifiers, st.sampled_from([*REFUSED_IN_IDS, " "]), identifiers).map("".join),
        st.tuples(st.sampled_from([*REFUSED_IN_IDS, " "]), identifiers).map("".join),
        st.text(min_size=1, max_size=64).filter(
            lambda t: any(not "!" <= ch <= "~" or ch in REFUSED_IN_IDS for ch in t)
        ),
        st.none(),
        st.integers(),
    )
)
@example(value=":")
@example(value=" ")
@example(value="a b")
@example(value="a:b")
@example(value="a/b")
@example(value="a%2Fb")
@example(value="x" * 65)
def test_validate_identifier_refuses_colons_spaces_empty_and_more_than_64_chars(
    value: object,
) -> None:
    with pytest.raises(InvalidRequest):
        validate_identifier(value, name="member_id")
