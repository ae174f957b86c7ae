"""Settlement statements as signed documents: built from the netting, canonicalised, signed.

A statement is one of the types of ``statements.model``. Its canonical form is its JSON per
RFC 8785 without the ``integrity`` block; the statement hash is SHA-256 of those bytes, and the
signature is Ed25519 over the same bytes with the coalition's statement key. The stored bytes are
what every later read returns, so a second settlement run, an API call and a workbook all show
the same statement, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from clearhouse.crypto.ed25519 import CoalitionKey, verify
from clearhouse.domain.canonical import canonical_json, utc_text
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.netting import Cohort, PartnerNet, PointsRollForward
from clearhouse.domain.netting import StatementLine as NettedLine
from clearhouse.statements.model import (
    COALITION_PARTY,
    BreakageCohort,
    CoalitionStatement,
    ContractTerms,
    Direction,
    ExpiredPoints,
    Integrity,
    OpenHolds,
    PartnerPosition,
    PartnerStatement,
    RollForward,
    ServedStatement,
    Statement,
    StatementLine,
    decode_statement,
    served,
)

__all__ = [
    "COALITION_PARTY",
    "WHO_PAYS",
    "SignedStatement",
    "coalition_document",
    "money",
    "partner_document",
    "sign_statement",
    "statement_problems",
    "who_pays",
]

_INTEGRITY: Final = msgspec.json.Encoder()

WHO_PAYS: Final = {
    Direction.COALITION_PAYS_PARTNER: "the coalition pays {partner}",
    Direction.PARTNER_PAYS_COALITION: "{partner} pays the coalition",
    Direction.NOTHING_DUE: "nothing is due either way",
}


@dataclass(frozen=True, slots=True)
class SignedStatement:
    party: str
    sequence: int
    document: bytes
    """The canonical JSON (RFC 8785) of the statement, without its integrity block."""
    sha256: bytes
    signature: bytes
    key_id: str

    def body(self) -> Statement:
        """The signed document: the coalition's statement, or a partner's."""
        return decode_statement(self.party, self.document)

    def integrity(self) -> Integrity:
        return Integrity(
            algorithm="ed25519",
            canonicalization="RFC 8785 (JCS), without this integrity block",
            key_id=self.key_id,
            sha256=self.sha256.hex(),
            signature=base64.b64encode(self.signature).decode(),
        )

    def with_integrity(self) -> ServedStatement:
        """The statement as served: the document plus its hash, signature and key id."""
        return served(self.body(), self.integrity())

    def served_json(self) -> bytes:
        """``with_integrity`` as the JSON that is served and written: the stored document, its
        integrity block added last. Spliced into the stored bytes, not encoded again, so a
        statement reads exactly as it was signed even after statements have gained a field,
        and an altered one is served as it is stored, for its hash to tell."""
        fields = msgspec.json.decode(self.document)
        if not isinstance(fields, dict) or not fields:
            raise ValueError(f"the stored statement of {self.party} is not a JSON object")
        head = self.document.rstrip()
        return head[:-1] + b',"integrity":' + _INTEGRITY.encode(self.integrity()) + b"}"


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _money_or_none(amount: Decimal) -> str | None:
    """An amount of a field that a statement leaves out while it is zero (``None``)."""
    return money(amount) if amount else None


def _rate_or_none(rate: Decimal) -> str | None:
    return str(rate) if rate else None


def sign_statement(statement: Statement, key: CoalitionKey) -> SignedStatement:
    """``statement`` canonicalised and signed; its party is its partner, or the coalition."""
    canonical = canonical_json(msgspec.to_builtins(statement))
    return SignedStatement(
        statement.partner_id or COALITION_PARTY,
        statement.sequence,
        canonical,
        hashlib.sha256(canonical).digest(),
        key.sign(canonical),
        key.key_id,
    )


def statement_problems(
    statement: SignedStatement, public_key: bytes, ledger_root: bytes
) -> list[str]:
    """What does not match in a stored statement: hash, signature, shape, or the period's root."""
    problems = []
    if hashlib.sha256(statement.document).digest() != statement.sha256:
        problems.append("its SHA-256 does not match its document")
    if not verify(public_key, statement.signature, statement.document):
        problems.append(f"its signature does not verify with key {statement.key_id}")
    try:
        body = statement.body()
    except msgspec.DecodeError as exc:
        problems.append(f"its document is not a statement: {exc}")
        return problems
    if body.ledger_root != ledger_root.hex():
        problems.append("it names another ledger root than the period's")
    return problems


def _line(line: NettedLine) -> StatementLine:
    return StatementLine(
        contract_version=line.contract_version,
        kind=line.kind,
        points=line.points,
        reversed_points=line.reversed_points,
        quantity=line.quantity,
        rate=str(line.rate),
        amount=money(line.amount),
    )


def _terms(version: ContractVersion) -> ContractTerms:
    return ContractTerms(
        version=version.version,
        effective_from=utc_text(version.effective_from),
        sha256=version.sha256,
        issue_rate=str(version.issue_rate),
        redemption_rate=str(version.redemption_rate),
        fee_per_entry=str(version.fee_per_entry),
        breakage_share_rate=_rate_or_none(version.breakage_share_rate),
        max_points_per_transaction=version.max_points_per_transaction,
        max_points_per_member_per_day=version.max_points_per_member_per_day,
    )


def who_pays(direction: Direction, legal_name: str, net: Decimal, currency: str) -> str:
    """Who pays whom, in words: ``Bäckerei Schmidt GmbH pays the coalition: 12.00 EUR``."""
    words = WHO_PAYS[direction].format(partner=legal_name)
    return words if not net else f"{words}: {money(abs(net))} {currency}"


def partner_document(
    *,
    period: str,
    sequence: int,
    coalition: str,
    net: PartnerNet,
    legal_name: str,
    currency: str,
    versions: Sequence[ContractVersion],
    entries: int,
    ledger_root: bytes,
    generated_at: datetime,
    opening_position: Decimal,
) -> PartnerStatement:
    used = {line.contract_version for line in net.lines} | {e.contract_version for e in net.expired}
    direction = Direction(net.direction)
    return PartnerStatement(
        statement_id=f"{period}/{net.partner_id}",
        sequence=sequence,
        coalition=coalition,
        partner_id=net.partner_id,
        legal_name=legal_name,
        period=period,
        currency=currency,
        generated_at=utc_text(generated_at),
        ledger_root=ledger_root.hex(),
        entries=entries,
        lines=tuple(_line(line) for line in net.lines),
        issue_amount=money(net.issue_amount),
        redemption_amount=money(net.redemption_amount),
        fees=money(net.fees),
        breakage_amount=_money_or_none(net.breakage_amount),
        net=money(net.net),
        direction=direction,
        who_pays=who_pays(direction, legal_name, net.net, currency),
        expired_points=tuple(
            ExpiredPoints(
                contract_version=e.contract_version,
                points=e.points,
                issue_rate=str(e.issue_rate),
                value=money(e.value),
            )
            for e in net.expired
        ),
        opening_position=money(opening_position),
        closing_position=money(opening_position + net.net),
        contract_versions=tuple(_terms(v) for v in versions if v.version in used),
    )


def coalition_document(
    *,
    period: str,
    sequence: int,
    coalition: str,
    currency: str,
    nets: Sequence[PartnerNet],
    legal_names: Mapping[str, str],
    margin: Decimal,
    roll_forward: PointsRollForward,
    open_holds: tuple[int, int],
    ledger_root: bytes,
    generated_at: datetime,
    cohorts: Sequence[Cohort] = (),
) -> CoalitionStatement:
    total = sum((n.net for n in nets), Decimal("0.00"))
    return CoalitionStatement(
        statement_id=f"{period}/{COALITION_PARTY}",
        sequence=sequence,
        coalition=coalition,
        partner_id=None,
        period=period,
        currency=currency,
        generated_at=utc_text(generated_at),
        ledger_root=ledger_root.hex(),
        partners=tuple(
            PartnerPosition(
                partner_id=n.partner_id,
                legal_name=legal_names[n.partner_id],
                issue_amount=money(n.issue_amount),
                redemption_amount=money(n.redemption_amount),
                fees=money(n.fees),
                breakage_amount=_money_or_none(n.breakage_amount),
                net=money(n.net),
                direction=Direction(n.direction),
                expired_points=sum(e.points for e in n.expired),
                expired_value=_money_or_none(sum((e.value for e in n.expired), Decimal("0.00"))),
            )
            for n in nets
        ),
        partners_net_total=money(total),
        coalition_margin=money(margin),
        multilateral_check=money(total + margin),
        open_holds_at_cut_off=OpenHolds(holds=open_holds[0], points=open_holds[1]),
        points_roll_forward=RollForward(
            opening=roll_forward.opening,
            issued=roll_forward.issued,
            redeemed=roll_forward.redeemed,
            expired=roll_forward.expired,
            adjusted=roll_forward.adjusted,
            closing=roll_forward.closing,
            member_balances_at_cut_off=roll_forward.closing_member_balances,
        ),
        breakage_cohorts=tuple(
            BreakageCohort(
                month=c.month,
                issued=c.issued,
                adjusted=c.adjusted,
                redeemed=c.redeemed,
                expired=c.expired,
                outstanding=c.outstanding,
                redeemed_by_age=c.redeemed_by_age,
            )
            for c in cohorts
        ),
    )
