"""The posting rules of the points ledger: each business event as balanced postings.

An entry is one business event; its postings move an amount of one asset on one account.
Amounts are signed so that every account's balance is the plain sum of its postings: a
credit is positive, a debit negative. A member's balance therefore rises on issue and falls on
redeem, and ``partner:p:issued`` runs negative by the points the partner has issued.

Every rule here returns an ``EntryDraft``: the postings, and the change to the member's balance
row (the only running balance the ledger keeps; partner and coalition accounts are aggregates of
postings, so no single row is hot). The database checks the same properties again: each entry
balances per asset (a deferred constraint trigger) and no member balance goes below zero (a
CHECK and a conditional update).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final
from uuid import UUID

from clearhouse.domain.errors import InsufficientPoints, InvalidRequest
from clearhouse.domain.money import POINTS_ASSET, validate_points

REFERENCE_LENGTH_MAX: Final = 128
REASON_LENGTH_MAX: Final = 500
ID_LENGTH_MAX: Final = 64


class EntryKind(StrEnum):
    ISSUE = "issue"
    REDEEM = "redeem"
    REVERSAL = "reversal"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"
    SETTLEMENT = "settlement"


REVERSIBLE_KINDS: Final = frozenset({EntryKind.ISSUE, EntryKind.REDEEM})
"""Partners reverse their issues and redeems; operator entries are corrected by adjustments."""


def member_account(member_id: str) -> str:
    return f"member:{member_id}"


def partner_issued_account(partner_id: str) -> str:
    return f"partner:{partner_id}:issued"


def partner_redeemed_account(partner_id: str) -> str:
    return f"partner:{partner_id}:redeemed"


def partner_settlement_account(partner_id: str) -> str:
    return f"partner:{partner_id}:settlement"


BREAKAGE_ACCOUNT: Final = "coalition:breakage"
ADJUSTMENTS_ACCOUNT: Final = "coalition:adjustments"
COALITION_SETTLEMENT_ACCOUNT: Final = "coalition:settlement"
COALITION_ACCOUNTS: Final = (BREAKAGE_ACCOUNT, ADJUSTMENTS_ACCOUNT, COALITION_SETTLEMENT_ACCOUNT)


def partner_accounts(partner_id: str) -> tuple[str, str, str]:
    """The three accounts every partner has."""
    return (
        partner_issued_account(partner_id),
        partner_redeemed_account(partner_id),
        partner_settlement_account(partner_id),
    )


@dataclass(frozen=True, slots=True)
class Posting:
    """One movement of ``amount`` of ``asset`` on ``account``; credit positive, debit negative.

    ``amount`` is an ``int`` for points and a ``Decimal`` for money.
    """

    account: str
    asset: str
    amount: int | Decimal


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An entry ready to be recorded: what happened and its balanced postings."""

    kind: EntryKind
    partner_id: str | None
    member_id: str | None
    points: int
    """The points the event moves (always positive; the postings carry the direction)."""
    postings: tuple[Posting, ...]
    member_delta_points: int
    """The change to the member's balance row: the sum of postings on ``member:{member_id}``."""
    reversal_of: UUID | None = None


@dataclass(frozen=True, slots=True)
class RecordedEntry:
    """What a reversal needs to know of the entry it reverses."""

    entry_id: UUID
    kind: EntryKind
    partner_id: str | None
    member_id: str | None
    points: int
    postings: tuple[Posting, ...]
    reversed_points: int
    """Points of this entry already reversed by earlier reversals."""
    contract_version: int | None = None
    """The version the entry was recorded under; its reversals record the same."""

    @property
    def remaining_points(self) -> int:
        return self.points - self.reversed_points


ID_CHARACTERS_REFUSED: Final = frozenset(":/?#%\\")
"""Account names use ``:``; the others would not survive as one segment of a URL path, and
every id is read back at a URL such as ``/v1/members/{member_id}``."""


def validate_identifier(value: object, *, name: str) -> str:
    """Ids are 1 to 64 printable ASCII characters without spaces or ``: / ? # % \\``."""
    if not isinstance(value, str) or not 1 <= len(value) <= ID_LENGTH_MAX:
        raise InvalidRequest(f"{name} must be 1 to {ID_LENGTH_MAX} characters", field=name)
    if not all("!" <= ch <= "~" and ch not in ID_CHARACTERS_REFUSED for ch in value):
        raise InvalidRequest(
            f"{name} may hold only printable ASCII without spaces or any of : / ? # % \\",
            field=name,
        )
    return value


def validate_text(value: object, *, name: str, length_max: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= length_max:
        raise InvalidRequest(f"{name} must be 1 to {length_max} characters", field=name)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidRequest(f"{name} must not hold control characters", field=name)
    return value


def balances_per_asset(postings: tuple[Posting, ...]) -> dict[str, int | Decimal]:
    """The sum of the postings per asset; an entry balances when every sum is zero."""
    sums: dict[str, int | Decimal] = defaultdict(int)
    for posting in postings:
        sums[posting.asset] += posting.amount
    return dict(sums)


def assert_balanced(postings: tuple[Posting, ...]) -> None:
    """Refuse postings that do not sum to zero per asset, or an entry of fewer than two."""
    if len(postings) < 2:
        raise InvalidRequest("an entry needs at least two postings")
    unbalanced = {asset: total for asset, total in balances_per_asset(postings).items() if total}
    if unbalanced:
        raise InvalidRequest(f"postings do not balance: {unbalanced}")


def _points_entry(
    kind: EntryKind,
    *,
    partner_id: str | None,
    member_id: str,
    points: int,
    debit: str,
    credit: str,
    reversal_of: UUID | None = None,
) -> EntryDraft:
    member = member_account(member_id)
    postings = (Posting(debit, POINTS_ASSET, -points), Posting(credit, POINTS_ASSET, points))
    assert_balanced(postings)
    delta = sum(int(p.amount) for p in postings if p.account == member)
    return EntryDraft(kind, partner_id, member_id, points, postings, delta, reversal_of)


def issue_points(partner_id: str, member_id: str, points: int) -> EntryDraft:
    """Partner ``partner_id`` gives ``points`` to the member: debit its issued account."""
    validate_points(points)
    return _points_entry(
        EntryKind.ISSUE,
        partner_id=partner_id,
        member_id=member_id,
        points=points,
        debit=partner_issued_account(partner_id),
        credit=member_account(member_id),
    )


def redeem_points(partner_id: str, member_id: str, points: int) -> EntryDraft:
    """The member spends ``points`` at partner ``partner_id``: credit its redeemed account."""
    validate_points(points)
    return _points_entry(
        EntryKind.REDEEM,
        partner_id=partner_id,
        member_id=member_id,
        points=points,
        debit=member_account(member_id),
        credit=partner_redeemed_account(partner_id),
    )


def expire_points(member_id: str, points: int) -> EntryDraft:
    """Points that lapse leave the member for ``coalition:breakage``."""
    validate_points(points)
    return _points_entry(
        EntryKind.EXPIRY,
        partner_id=None,
        member_id=member_id,
        points=points,
        debit=member_account(member_id),
        credit=BREAKAGE_ACCOUNT,
    )


def adjust_points(member_id: str, points_signed: int) -> EntryDraft:
    """An operator's goodwill (positive) or correction (negative) against the member."""
    if isinstance(points_signed, bool) or not isinstance(points_signed, int) or not points_signed:
        raise InvalidRequest("an adjustment moves a non-zero whole number of points")
    points = validate_points(abs(points_signed))
    member = member_account(member_id)
    debit, credit = (
        (ADJUSTMENTS_ACCOUNT, member) if points_signed > 0 else (member, ADJUSTMENTS_ACCOUNT)
    )
    return _points_entry(
        EntryKind.ADJUSTMENT,
        partner_id=None,
        member_id=member_id,
        points=points,
        debit=debit,
        credit=credit,
    )


def reverse_entry(original: RecordedEntry, points: int | None = None) -> EntryDraft:
    """Mirror the postings of ``original`` for ``points`` of it (all that remain when None).

    Only issues and redeems are reversed, and never by more than remains of them.
    """
    if original.kind not in REVERSIBLE_KINDS:
        raise InvalidRequest(f"a {original.kind} entry cannot be reversed")
    remaining = original.remaining_points
    if points is None:
        points = remaining
        if points == 0:
            raise InsufficientPoints(f"entry {original.entry_id} has no points left to reverse")
    validate_points(points)
    if points > remaining:
        raise InsufficientPoints(
            f"only {remaining} points of entry {original.entry_id} remain to reverse, not {points}"
        )
    postings = tuple(
        Posting(p.account, p.asset, -int(p.amount) * points // original.points)
        for p in original.postings
    )
    assert_balanced(postings)
    member = member_account(original.member_id) if original.member_id else None
    delta = sum(int(p.amount) for p in postings if p.account == member)
    return EntryDraft(
        EntryKind.REVERSAL,
        original.partner_id,
        original.member_id,
        points,
        postings,
        delta,
        original.entry_id,
    )


def settle_partner(partner_id: str, net: Decimal, currency: str) -> EntryDraft:
    """The money a period leaves between a partner and the coalition, in the ledger.

    ``net`` > 0: the coalition owes the partner (credit ``partner:p:settlement``); < 0: the
    partner owes the coalition.
    """
    if not net:
        raise InvalidRequest("nothing to settle")
    postings = (
        Posting(partner_settlement_account(partner_id), currency, net),
        Posting(COALITION_SETTLEMENT_ACCOUNT, currency, -net),
    )
    assert_balanced(postings)
    return EntryDraft(EntryKind.SETTLEMENT, partner_id, None, 0, postings, 0)
