"""The tables of a statement workbook, column by column: the one place a column is declared.

A new column of a sheet is one ``Column`` here (header, width, number format, value); the
header row, the width and every cell of it follow from that line (``statements.sheets``). Its
value is read from the typed statement (``statements.model``) or, for Entries, from the ledger's
``StatementEntry``, so a field that a statement does not have is a type error, not an empty cell.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final, NamedTuple

from clearhouse.domain.records import StatementEntry
from clearhouse.statements.model import ContractTerms, PartnerPosition, StatementLine
from clearhouse.statements.sheets import (
    DATETIME_FORMAT,
    MONEY_FORMAT,
    POINTS_FORMAT,
    RATE_FORMAT,
    Column,
    utc_moment,
)

ENTRY_COLUMNS: Final[tuple[Column[StatementEntry], ...]] = (
    Column("Entry id", 38, None, lambda entry: entry.entry_id),
    Column("Recorded at (UTC)", 20, DATETIME_FORMAT, lambda entry: entry.recorded_at),
    Column("Occurred at (UTC)", 20, DATETIME_FORMAT, lambda entry: entry.occurred_at),
    Column("Kind", 12, None, lambda entry: entry.kind),
    Column("Partner id", 22, None, lambda entry: entry.partner_id),
    Column("Member id", 26, None, lambda entry: entry.member_id),
    Column("Points", 12, None, lambda entry: entry.points),
    Column("Contract version", 10, None, lambda entry: entry.contract_version),
    Column("Reference", 40, None, lambda entry: entry.reference),
    Column("Reversal of", 38, None, lambda entry: entry.reversal_of),
)
"""The Entries sheets: one row per entry of the period, in the order of its ledger root."""

LINE_COLUMNS: Final[tuple[Column[StatementLine], ...]] = (
    Column("Kind", 34, None, lambda line: line.kind.value),
    Column("Contract version", 18, None, lambda line: line.contract_version),
    Column("Points", 16, POINTS_FORMAT, lambda line: line.points),
    Column("Reversed points", 16, POINTS_FORMAT, lambda line: line.reversed_points),
    Column("Quantity", 16, POINTS_FORMAT, lambda line: line.quantity),
    Column("Rate", 14, RATE_FORMAT, lambda line: Decimal(line.rate)),
    Column("Amount ({currency})", 18, MONEY_FORMAT, lambda line: Decimal(line.amount)),
)
"""A partner's Summary: its statement lines (column A also holds the header block's labels)."""


class PositionRow(NamedTuple):
    """A partner in the coalition's Summary, with who pays whom in words."""

    position: PartnerPosition
    who_pays: str


POSITION_COLUMNS: Final[tuple[Column[PositionRow], ...]] = (
    Column("Partner id", 34, None, lambda row: row.position.partner_id),
    Column("Legal name", 30, None, lambda row: row.position.legal_name),
    Column(
        "Issue amount ({currency})",
        18,
        MONEY_FORMAT,
        lambda row: Decimal(row.position.issue_amount),
    ),
    Column(
        "Redemption amount ({currency})",
        18,
        MONEY_FORMAT,
        lambda row: Decimal(row.position.redemption_amount),
    ),
    Column("Fees ({currency})", 16, MONEY_FORMAT, lambda row: Decimal(row.position.fees)),
    Column("Net ({currency})", 18, MONEY_FORMAT, lambda row: Decimal(row.position.net)),
    Column("Direction", 24, None, lambda row: row.position.direction.value),
    Column("Who pays whom", 40, None, lambda row: row.who_pays),
)
"""The coalition's Summary: one row per partner."""


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
    Column("Contract version", 34, None, lambda row: row.label),
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
    """A contract version applied to a partner."""

    partner_id: str
    terms: ContractTerms


CONTRACT_COLUMNS: Final[tuple[Column[TermsRow], ...]] = (
    Column("Partner id", 22, None, lambda row: row.partner_id),
    Column("Version", 10, None, lambda row: row.terms.version),
    Column(
        "Effective from (UTC)",
        20,
        DATETIME_FORMAT,
        lambda row: utc_moment(row.terms.effective_from),
    ),
    Column("Contract file SHA-256", 66, None, lambda row: row.terms.sha256),
    Column("Issue rate", 14, RATE_FORMAT, lambda row: Decimal(row.terms.issue_rate)),
    Column("Redemption rate", 16, RATE_FORMAT, lambda row: Decimal(row.terms.redemption_rate)),
    Column("Fee per entry", 14, RATE_FORMAT, lambda row: Decimal(row.terms.fee_per_entry)),
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
