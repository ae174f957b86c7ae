"""Netting a period: the ledger's aggregates become statement lines, nets and checks.

Per partner and contract version, points issued and redeemed in the period, each less the
reversals of that version's entries recorded in the period, become money at that version's
rates; each line (contract version, kind) is rounded once to cents, half-even, and totals are
sums of rounded lines. ``net = redemption_amount + breakage_amount - issue_amount - fees``:
positive, the coalition pays the partner; negative, the partner pays the coalition.

Expired points move no money between partners, unless a version sets ``breakage_share_rate``:
then the points of that version's issues that expired in the period are a breakage line, money
the coalition returns to the issuer. Either way a statement shows them (``ExpiredPoints``),
valued at the issue rate, as information.

Before anything is settled, ``check_settlement`` recomputes what must hold and returns every
violation as a sentence (all of them, not the first): the partners' nets and the coalition's
margin add up to zero exactly, and the points roll-forward closes against the members' balances
at the cut-off. A settlement with any violation is refused and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.money import round_minor

ZERO = Decimal("0.00")


class LineKind(StrEnum):
    ISSUE = "issue"
    REDEMPTION = "redemption"
    FEE = "fee"
    BREAKAGE = "breakage"


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One row of the period's aggregate query: a partner's entries of one version and kind."""

    partner_id: str
    contract_version: int
    kind: LineKind
    """ISSUE or REDEMPTION; a reversal counts under the kind of the entry it reverses."""
    points: int
    """Points of the entries of this kind recorded in the period."""
    reversed_points: int
    """Points of reversals recorded in the period, of entries of this kind and version."""
    entries: int
    """Entries (issues, redeems, and reversals of them) recorded in the period."""


@dataclass(frozen=True, slots=True)
class Expired:
    """Points of a partner's issues, under one contract version, that expired in the period."""

    partner_id: str
    contract_version: int
    points: int


@dataclass(frozen=True, slots=True)
class ExpiredPoints:
    """Expired points of one issuing version as a statement shows them: valued at the issue
    rate, as information (``breakage_share_rate`` decides what, if anything, is paid)."""

    contract_version: int
    points: int
    issue_rate: Decimal
    value: Decimal
    """``points x issue_rate``, rounded once to cents, half-even."""


@dataclass(frozen=True, slots=True)
class StatementLine:
    contract_version: int
    kind: LineKind
    points: int
    reversed_points: int
    quantity: int
    """Net points for issue and redemption lines; the number of entries for a fee line."""
    rate: Decimal
    amount: Decimal
    """``quantity x rate``, rounded once to cents, half-even."""


@dataclass(frozen=True, slots=True)
class PartnerNet:
    partner_id: str
    lines: tuple[StatementLine, ...]
    issue_amount: Decimal
    redemption_amount: Decimal
    fees: Decimal
    net: Decimal
    breakage_amount: Decimal = ZERO
    expired: tuple[ExpiredPoints, ...] = ()

    @property
    def direction(self) -> str:
        if self.net > 0:
            return "coalition_pays_partner"
        if self.net < 0:
            return "partner_pays_coalition"
        return "nothing_due"


@dataclass(frozen=True, slots=True)
class PointsRollForward:
    """Outstanding member points: opening + issued - redeemed - expired ± adjustments."""

    opening: int
    issued: int
    redeemed: int
    expired: int
    adjusted: int
    closing_member_balances: int
    """The sum of member balances at the cut-off, read from the ledger separately."""

    @property
    def closing(self) -> int:
        return self.opening + self.issued - self.redeemed - self.expired + self.adjusted


@dataclass(frozen=True, slots=True)
class Cohort:
    """The points of one month of issue (the month a lot was first made, in the coalition's
    time zone), from then to a period's cut-off: the data of a breakage estimate.

    ``outstanding = issued + adjusted - redeemed - expired``; each figure is net of its
    reversals (points a reversal gives back after their lot expired count, as a new lot, under
    the cohort of the lot they came from)."""

    month: str
    issued: int
    adjusted: int
    redeemed: int
    expired: int
    outstanding: int
    redeemed_by_age: tuple[int, ...]
    """Points redeemed (net) in the month of issue (age 0), the month after (1), … up to the
    cut-off's month."""


def _line(version: ContractVersion, aggregate: Aggregate) -> StatementLine:
    rate = version.issue_rate if aggregate.kind is LineKind.ISSUE else version.redemption_rate
    quantity = aggregate.points - aggregate.reversed_points
    return StatementLine(
        contract_version=version.version,
        kind=aggregate.kind,
        points=aggregate.points,
        reversed_points=aggregate.reversed_points,
        quantity=quantity,
        rate=rate,
        amount=round_minor(quantity * rate),
    )


def net_partner(
    partner_id: str,
    aggregates: Sequence[Aggregate],
    versions: Mapping[int, ContractVersion],
    expired: Sequence[Expired] = (),
) -> PartnerNet:
    """One partner's statement lines and net, from its aggregates, the points of its issues
    that expired in the period, and its contract versions."""
    lines: list[StatementLine] = []
    entries_by_version: dict[int, int] = {}
    for aggregate in sorted(aggregates, key=lambda a: (a.contract_version, a.kind.value)):
        version = versions[aggregate.contract_version]
        lines.append(_line(version, aggregate))
        entries_by_version[aggregate.contract_version] = (
            entries_by_version.get(aggregate.contract_version, 0) + aggregate.entries
        )
    for number, entries in sorted(entries_by_version.items()):
        fee = versions[number].fee_per_entry
        if fee:
            lines.append(
                StatementLine(number, LineKind.FEE, 0, 0, entries, fee, round_minor(entries * fee))
            )
    shown: list[ExpiredPoints] = []
    for item in sorted(expired, key=lambda e: e.contract_version):
        version = versions[item.contract_version]
        shown.append(
            ExpiredPoints(
                item.contract_version,
                item.points,
                version.issue_rate,
                round_minor(item.points * version.issue_rate),
            )
        )
        share = version.breakage_share_rate
        if share:
            lines.append(
                StatementLine(
                    item.contract_version,
                    LineKind.BREAKAGE,
                    item.points,
                    0,
                    item.points,
                    share,
                    round_minor(item.points * share),
                )
            )
    lines.sort(key=lambda line: (line.contract_version, line.kind.value))
    issue = _total(lines, LineKind.ISSUE)
    redemption = _total(lines, LineKind.REDEMPTION)
    fees = _total(lines, LineKind.FEE)
    breakage = _total(lines, LineKind.BREAKAGE)
    return PartnerNet(
        partner_id,
        tuple(lines),
        issue,
        redemption,
        fees,
        redemption + breakage - issue - fees,
        breakage,
        tuple(shown),
    )


PAID_BY_COALITION: frozenset[LineKind] = frozenset({LineKind.REDEMPTION, LineKind.BREAKAGE})
"""Lines the coalition pays; it receives the others (issue, fee)."""


def _total(lines: Sequence[StatementLine], kind: LineKind) -> Decimal:
    return sum((line.amount for line in lines if line.kind is kind), ZERO)


def coalition_margin(nets: Sequence[PartnerNet]) -> Decimal:
    """What the coalition keeps: what partners pay for issued points and fees, less what it
    pays them for redeemed points and breakage shares, summed from the lines (not from the
    nets)."""
    received = sum(
        (line.amount for n in nets for line in n.lines if line.kind not in PAID_BY_COALITION),
        ZERO,
    )
    paid = sum(
        (line.amount for n in nets for line in n.lines if line.kind in PAID_BY_COALITION), ZERO
    )
    return received - paid


def check_settlement(
    nets: Sequence[PartnerNet],
    margin: Decimal,
    roll_forward: PointsRollForward,
    cohorts: Sequence[Cohort] | None = None,
) -> list[str]:
    """Every reason not to settle, as sentences; empty when the period adds up.

    ``cohorts`` (when given) must each close, and together hold what members hold at the
    cut-off: they are read from the lots, a third source beside postings and balances."""
    problems: list[str] = []
    total = sum((n.net for n in nets), ZERO)
    if total + margin != 0:
        problems.append(
            f"the partners' nets ({total}) and the coalition's margin ({margin}) do not add up "
            f"to zero (they leave {total + margin})"
        )
    for net in nets:
        if net.net != (net.redemption_amount + net.breakage_amount - net.issue_amount - net.fees):
            problems.append(f"the net of {net.partner_id} is not its lines' sum")
        for line in net.lines:
            if line.amount != round_minor(line.quantity * line.rate):
                problems.append(f"a line of {net.partner_id} is not quantity x rate")
    if roll_forward.closing != roll_forward.closing_member_balances:
        problems.append(
            f"the points roll-forward closes at {roll_forward.closing} but members hold "
            f"{roll_forward.closing_member_balances} at the cut-off"
        )
    if cohorts is not None:
        for cohort in cohorts:
            moved = cohort.issued + cohort.adjusted - cohort.redeemed - cohort.expired
            if moved != cohort.outstanding or sum(cohort.redeemed_by_age) != cohort.redeemed:
                problems.append(f"the cohort of {cohort.month} does not close")
        outstanding = sum(c.outstanding for c in cohorts)
        if outstanding != roll_forward.closing_member_balances:
            problems.append(
                f"the lots hold {outstanding} points at the cut-off but members hold "
                f"{roll_forward.closing_member_balances}"
            )
    return problems
