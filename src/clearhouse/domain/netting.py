"""Netting a period: the ledger's aggregates become statement lines, nets and checks.

Per partner and contract version, points issued and redeemed in the period, each less the
reversals of that version's entries recorded in the period, become money at that version's
rates; each line (contract version, kind) is rounded once to cents, half-even, and totals are
sums of rounded lines. ``net = redemption_amount - issue_amount - fees``: positive, the coalition
pays the partner; negative, the partner pays the coalition.

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
) -> PartnerNet:
    """One partner's statement lines and net, from its aggregates and contract versions."""
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
    lines.sort(key=lambda line: (line.contract_version, line.kind.value))
    issue = sum((line.amount for line in lines if line.kind is LineKind.ISSUE), ZERO)
    redemption = sum((line.amount for line in lines if line.kind is LineKind.REDEMPTION), ZERO)
    fees = sum((line.amount for line in lines if line.kind is LineKind.FEE), ZERO)
    return PartnerNet(partner_id, tuple(lines), issue, redemption, fees, redemption - issue - fees)


def coalition_margin(nets: Sequence[PartnerNet]) -> Decimal:
    """What the coalition keeps: what partners pay for issued points and fees, less what it
    pays them for redeemed points, summed from the lines (not from the nets)."""
    received = sum(
        (line.amount for n in nets for line in n.lines if line.kind is not LineKind.REDEMPTION),
        ZERO,
    )
    paid = sum(
        (line.amount for n in nets for line in n.lines if line.kind is LineKind.REDEMPTION), ZERO
    )
    return received - paid


def check_settlement(
    nets: Sequence[PartnerNet], margin: Decimal, roll_forward: PointsRollForward
) -> list[str]:
    """Every reason not to settle, as sentences; empty when the period adds up."""
    problems: list[str] = []
    total = sum((n.net for n in nets), ZERO)
    if total + margin != 0:
        problems.append(
            f"the partners' nets ({total}) and the coalition's margin ({margin}) do not add up "
            f"to zero (they leave {total + margin})"
        )
    for net in nets:
        if net.net != net.redemption_amount - net.issue_amount - net.fees:
            problems.append(f"the net of {net.partner_id} is not its lines' sum")
        for line in net.lines:
            if line.amount != round_minor(line.quantity * line.rate):
                problems.append(f"a line of {net.partner_id} is not quantity x rate")
    if roll_forward.closing != roll_forward.closing_member_balances:
        problems.append(
            f"the points roll-forward closes at {roll_forward.closing} but members hold "
            f"{roll_forward.closing_member_balances} at the cut-off"
        )
    return problems
