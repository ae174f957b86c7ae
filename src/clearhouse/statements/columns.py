"""The tables of a statement workbook, column by column: the one place a column is declared.

A new column of a sheet is one ``Column`` here (header, width, number format, value); the
header row, the width and every cell of it follow from that line (``statements.sheets``). Its
value is read from the typed statement (``statements.model``) or, for Entries, from the ledger's
``StatementEntry``, so a field that a statement does not have is a type error, not an empty cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import accumulate
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from clearhouse.domain.records import StatementEntry
from clearhouse.statements.model import (
    BreakageCohort,
    ContractTerms,
    Direction,
    ExpiredPoints,
    PartnerPosition,
    StatementLine,
)
from clearhouse.statements.sheets import (
    DATETIME_FORMAT,
    MONEY_FORMAT,
    POINTS_FORMAT,
    RATE_FORMAT,
    SHARE_FORMAT,
    VERSION_FORMAT,
    Column,
    local_moment,
    utc_moment,
)

DIRECTION_WORDS: Final = {
    Direction.PARTNER_PAYS_COALITION: "the partner pays the coalition",
    Direction.COALITION_PAYS_PARTNER: "the coalition pays the partner",
    Direction.NOTHING_DUE: "nothing is due",
}
"""A statement's direction as a reader reads it; the JSON statement keeps its code."""


def _decimal(text: str | None) -> Decimal | None:
    """A decimal string of the statement that may be absent, as a number (``None``: empty)."""
    return None if text is None else Decimal(text)


ENTRY_COLUMNS: Final[tuple[Column[StatementEntry], ...]] = (
    Column("Entry id", 38, None, lambda entry: entry.entry_id),
    Column("Recorded at (UTC)", 20, DATETIME_FORMAT, lambda entry: entry.recorded_at),
    Column("Occurred at (UTC)", 20, DATETIME_FORMAT, lambda entry: entry.occurred_at),
    Column("Kind", 12, None, lambda entry: entry.kind),
    Column("Partner id", 22, None, lambda entry: entry.partner_id),
    Column("Member id", 26, None, lambda entry: entry.member_id),
    Column("Points", 12, POINTS_FORMAT, lambda entry: entry.points),
    # A plain number: a format would cost every row a styled cell, and a version needs none.
    Column("Contract version", 10, None, lambda entry: entry.contract_version, align="right"),
    Column("Reference", 40, None, lambda entry: entry.reference),
    Column("Reversal of", 38, None, lambda entry: entry.reversal_of),
)
"""The Entries sheets: one row per entry of the period, in the order of its ledger root."""

LINE_COLUMNS: Final[tuple[Column[StatementLine], ...]] = (
    Column("Kind", 28, None, lambda line: line.kind.value),
    Column("Contract version", 9, VERSION_FORMAT, lambda line: line.contract_version),
    Column("Points", 11, POINTS_FORMAT, lambda line: line.points),
    Column("Reversed points", 10, POINTS_FORMAT, lambda line: line.reversed_points),
    Column("Quantity", 11, POINTS_FORMAT, lambda line: line.quantity),
    Column("Rate", 10, RATE_FORMAT, lambda line: Decimal(line.rate)),
    Column("Amount ({currency})", 14, MONEY_FORMAT, lambda line: Decimal(line.amount)),
)
"""A partner's Summary: its statement lines (column A also holds the header block's labels,
so it is wide enough for them; the figures' columns fit a portrait page)."""

EXPIRED_COLUMNS: Final[tuple[Column[ExpiredPoints], ...]] = (
    Column("Contract version", 34, VERSION_FORMAT, lambda expired: expired.contract_version),
    Column("Expired points", 18, POINTS_FORMAT, lambda expired: expired.points),
    Column("Issue rate", 16, RATE_FORMAT, lambda expired: Decimal(expired.issue_rate)),
    Column(
        "Value at issue rate ({currency})", 16, MONEY_FORMAT, lambda expired: Decimal(expired.value)
    ),
)
"""A partner's Summary, under its lines: the points of its issues that expired, per version
(information; a breakage line is what is paid for them)."""


class PositionRow(NamedTuple):
    """A partner in the coalition's Summary, with who pays whom in words."""

    position: PartnerPosition
    who_pays: str


POSITION_COLUMNS: Final[tuple[Column[PositionRow], ...]] = (
    Column("Partner id", 26, None, lambda row: row.position.partner_id),
    Column("Legal name", 24, None, lambda row: row.position.legal_name),
    Column(
        "Issue amount ({currency})",
        13,
        MONEY_FORMAT,
        lambda row: Decimal(row.position.issue_amount),
    ),
    Column(
        "Redemption amount ({currency})",
        13,
        MONEY_FORMAT,
        lambda row: Decimal(row.position.redemption_amount),
    ),
    Column("Fees ({currency})", 11, MONEY_FORMAT, lambda row: Decimal(row.position.fees)),
    Column("Net ({currency})", 13, MONEY_FORMAT, lambda row: Decimal(row.position.net)),
    Column("Direction", 30, None, lambda row: DIRECTION_WORDS[row.position.direction], indent=1),
    Column("Who pays whom", 50, None, lambda row: row.who_pays),
)
"""The coalition's Summary: one row per partner (column A also holds the header block's
labels)."""

NET_COLUMN: Final = 6
"""The coalition Summary's column of nets (F), which its totals line up under."""


class ExpiredByPartnerRow(NamedTuple):
    """A partner whose issues expired in the period, or the total of them (``Total``)."""

    partner_id: str
    legal_name: str | None
    expired_points: int
    expired_value: Decimal
    breakage_amount: Decimal

    @staticmethod
    def of(position: PartnerPosition) -> ExpiredByPartnerRow:
        return ExpiredByPartnerRow(
            position.partner_id,
            position.legal_name,
            position.expired_points,
            _decimal(position.expired_value) or Decimal("0.00"),
            _decimal(position.breakage_amount) or Decimal("0.00"),
        )

    @staticmethod
    def total(rows: Sequence[ExpiredByPartnerRow]) -> ExpiredByPartnerRow:
        return ExpiredByPartnerRow(
            "Total",
            None,
            sum(row.expired_points for row in rows),
            sum((row.expired_value for row in rows), Decimal("0.00")),
            sum((row.breakage_amount for row in rows), Decimal("0.00")),
        )


EXPIRED_BY_PARTNER_COLUMNS: Final[tuple[Column[ExpiredByPartnerRow], ...]] = (
    Column("Issuing partner", 34, None, lambda row: row.partner_id),
    Column("Legal name", 30, None, lambda row: row.legal_name),
    Column("Expired points", 18, POINTS_FORMAT, lambda row: row.expired_points),
    Column("Value at issue rate ({currency})", 18, MONEY_FORMAT, lambda row: row.expired_value),
    Column("Breakage share ({currency})", 16, MONEY_FORMAT, lambda row: row.breakage_amount),
)
"""The coalition's Summary, under the positions: the partners whose issues expired."""


class PointsFigures(NamedTuple):
    """Points issued and redeemed, each with its reversals and net, side by side."""

    issued: int = 0
    issue_reversals: int = 0
    net_issued: int = 0
    redeemed: int = 0
    redemption_reversals: int = 0
    net_redeemed: int = 0

    @staticmethod
    def total(figures: Iterable[PointsFigures]) -> PointsFigures:
        """Column by column, the sum of ``figures`` (zeros for none)."""
        return PointsFigures(
            *(sum(column) for column in zip(PointsFigures(), *figures, strict=True))
        )


class PointsRow(NamedTuple):
    """A Reconciliation row: a contract version (a partner's) or a partner (the coalition's)."""

    label: int | str
    legal_name: str | None
    figures: PointsFigures


FIGURE_COLUMNS: Final[tuple[Column[PointsRow], ...]] = (
    Column("Points issued", 16, POINTS_FORMAT, lambda row: row.figures.issued),
    Column("Issue reversals", 16, POINTS_FORMAT, lambda row: row.figures.issue_reversals),
    Column("Net issued", 16, POINTS_FORMAT, lambda row: row.figures.net_issued),
    Column("Points redeemed", 16, POINTS_FORMAT, lambda row: row.figures.redeemed),
    Column("Redemption reversals", 20, POINTS_FORMAT, lambda row: row.figures.redemption_reversals),
    Column("Net redeemed", 16, POINTS_FORMAT, lambda row: row.figures.net_redeemed),
)

VERSION_POINTS_COLUMNS: Final[tuple[Column[PointsRow], ...]] = (
    Column("Contract version", 34, VERSION_FORMAT, lambda row: row.label),
    *FIGURE_COLUMNS,
)
"""A partner's Reconciliation: per contract version."""

PARTNER_POINTS_COLUMNS: Final[tuple[Column[PointsRow], ...]] = (
    Column("Partner id", 44, None, lambda row: row.label),
    Column("Legal name", 30, None, lambda row: row.legal_name),
    *FIGURE_COLUMNS,
)
"""The coalition's Reconciliation: per partner (column A also holds the roll-forward's labels)."""


class TermsRow(NamedTuple):
    """A contract version applied to a partner, and the coalition's time zone."""

    partner_id: str
    terms: ContractTerms
    zone: ZoneInfo


CONTRACT_COLUMNS: Final[tuple[Column[TermsRow], ...]] = (
    Column("Partner id", 22, None, lambda row: row.partner_id),
    Column("Version", 10, VERSION_FORMAT, lambda row: row.terms.version),
    Column(
        "Effective from (UTC)",
        20,
        DATETIME_FORMAT,
        lambda row: utc_moment(row.terms.effective_from),
    ),
    Column(
        "Effective from ({zone})",
        20,
        DATETIME_FORMAT,
        lambda row: local_moment(row.terms.effective_from, row.zone),
    ),
    Column("Contract file SHA-256", 66, None, lambda row: row.terms.sha256),
    Column("Issue rate", 14, RATE_FORMAT, lambda row: Decimal(row.terms.issue_rate)),
    Column("Redemption rate", 16, RATE_FORMAT, lambda row: Decimal(row.terms.redemption_rate)),
    Column("Fee per entry", 14, RATE_FORMAT, lambda row: Decimal(row.terms.fee_per_entry)),
    Column(
        "Breakage share rate", 16, RATE_FORMAT, lambda row: _decimal(row.terms.breakage_share_rate)
    ),
    Column(
        "Max points per transaction",
        18,
        POINTS_FORMAT,
        lambda row: row.terms.max_points_per_transaction,
    ),
    Column(
        "Max points per member per day",
        20,
        POINTS_FORMAT,
        lambda row: row.terms.max_points_per_member_per_day,
    ),
)
"""The Contract sheet: the terms applied, per partner and version."""


def share(part: int, whole: int) -> Decimal | None:
    """``part`` of ``whole`` as a number (0.25 for a quarter); none of nothing."""
    return Decimal(part) / whole if whole else None


class CohortRow(NamedTuple):
    """A month of issue on the Breakage sheet, or the total of all of them (``Total``)."""

    month: str
    issued: int
    adjusted: int
    redeemed: int
    expired: int
    outstanding: int

    @property
    def base(self) -> int:
        """What the shares are of: the points issued and adjusted."""
        return self.issued + self.adjusted

    @staticmethod
    def of(cohort: BreakageCohort) -> CohortRow:
        return CohortRow(
            cohort.month,
            cohort.issued,
            cohort.adjusted,
            cohort.redeemed,
            cohort.expired,
            cohort.outstanding,
        )

    @staticmethod
    def total(rows: Sequence[CohortRow]) -> CohortRow:
        return CohortRow(
            "Total",
            sum(row.issued for row in rows),
            sum(row.adjusted for row in rows),
            sum(row.redeemed for row in rows),
            sum(row.expired for row in rows),
            sum(row.outstanding for row in rows),
        )


COHORT_COLUMNS: Final[tuple[Column[CohortRow], ...]] = (
    Column("Month of issue", 40, None, lambda row: row.month),
    Column("Issued", 14, POINTS_FORMAT, lambda row: row.issued),
    Column("Adjusted", 14, POINTS_FORMAT, lambda row: row.adjusted),
    Column("Redeemed", 14, POINTS_FORMAT, lambda row: row.redeemed),
    Column("Expired", 14, POINTS_FORMAT, lambda row: row.expired),
    Column("Outstanding", 14, POINTS_FORMAT, lambda row: row.outstanding),
    Column("Redeemed share", 16, SHARE_FORMAT, lambda row: share(row.redeemed, row.base)),
    Column("Expired share", 16, SHARE_FORMAT, lambda row: share(row.expired, row.base)),
    Column("Outstanding share", 18, SHARE_FORMAT, lambda row: share(row.outstanding, row.base)),
)
"""The Breakage sheet: one row per month of issue (column A also holds the sheet's labels)."""


class CurveRow(NamedTuple):
    """A month of issue's redemption curve: at each age in months, the share of its points
    (issued and adjusted) redeemed by then."""

    month: str
    shares: tuple[Decimal | None, ...]

    @staticmethod
    def of(cohort: BreakageCohort) -> CurveRow:
        base = cohort.issued + cohort.adjusted
        redeemed_by_then = accumulate(cohort.redeemed_by_age)
        return CurveRow(cohort.month, tuple(share(points, base) for points in redeemed_by_then))

    def at(self, age: int) -> Decimal | None:
        """The share redeemed by ``age``; none past the cohort's age at the cut-off."""
        return self.shares[age] if age < len(self.shares) else None


def _age_column(age: int) -> Column[CurveRow]:
    return Column(f"Age {age}", 10, SHARE_FORMAT, lambda row: row.at(age))


def curve_columns(ages: int) -> tuple[Column[CurveRow], ...]:
    """The Breakage sheet's redemption curves: the month of issue, then ages 0 to ``ages`` - 1
    (the oldest cohort's age at the cut-off decides how many)."""
    return (
        Column("Month of issue", 40, None, lambda row: row.month),
        *(_age_column(age) for age in range(ages)),
    )
