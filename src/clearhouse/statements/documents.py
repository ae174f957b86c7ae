"""Settlement statements as JSON documents: built from the netting, canonicalised, signed.

A statement's canonical form is its JSON per RFC 8785 without the ``integrity`` block; the
statement hash is SHA-256 of those bytes, and the signature is Ed25519 over the same bytes with
the coalition's statement key. The stored bytes are what every later read returns, so a second
settlement run, an API call and a workbook all show the same statement, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from clearhouse.crypto.ed25519 import CoalitionKey, verify
from clearhouse.domain.canonical import canonical_json, utc_text
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.netting import PartnerNet, PointsRollForward

COALITION_PARTY = "coalition"

WHO_PAYS = {
    "coalition_pays_partner": "the coalition pays {partner}",
    "partner_pays_coalition": "{partner} pays the coalition",
    "nothing_due": "nothing is due either way",
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

    def body(self) -> dict[str, Any]:
        return dict(msgspec.json.decode(self.document))

    def with_integrity(self) -> dict[str, Any]:
        """The statement as served: the document plus its hash, signature and key id."""
        return {
            **self.body(),
            "integrity": {
                "algorithm": "ed25519",
                "canonicalization": "RFC 8785 (JCS), without this integrity block",
                "key_id": self.key_id,
                "sha256": self.sha256.hex(),
                "signature": base64.b64encode(self.signature).decode(),
            },
        }


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def sign_statement(
    party: str, sequence: int, document: Mapping[str, Any], key: CoalitionKey
) -> SignedStatement:
    canonical = canonical_json(document)
    return SignedStatement(
        party,
        sequence,
        canonical,
        hashlib.sha256(canonical).digest(),
        key.sign(canonical),
        key.key_id,
    )


def statement_problems(
    statement: SignedStatement, public_key: bytes, ledger_root: bytes
) -> list[str]:
    """What does not match in a stored statement: hash, signature, or the period's root."""
    problems = []
    if hashlib.sha256(statement.document).digest() != statement.sha256:
        problems.append("its SHA-256 does not match its document")
    if not verify(public_key, statement.signature, statement.document):
        problems.append(f"its signature does not verify with key {statement.key_id}")
    if statement.body().get("ledger_root") != ledger_root.hex():
        problems.append("it names another ledger root than the period's")
    return problems


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
    generated_at: Any,
    opening_position: Decimal,
) -> dict[str, Any]:
    used = sorted({line.contract_version for line in net.lines})
    return {
        "statement_id": f"{period}/{net.partner_id}",
        "sequence": sequence,
        "coalition": coalition,
        "partner_id": net.partner_id,
        "legal_name": legal_name,
        "period": period,
        "currency": currency,
        "generated_at": utc_text(generated_at),
        "ledger_root": ledger_root.hex(),
        "entries": entries,
        "lines": [
            {
                "contract_version": line.contract_version,
                "kind": line.kind.value,
                "points": line.points,
                "reversed_points": line.reversed_points,
                "quantity": line.quantity,
                "rate": str(line.rate),
                "amount": money(line.amount),
            }
            for line in net.lines
        ],
        "issue_amount": money(net.issue_amount),
        "redemption_amount": money(net.redemption_amount),
        "fees": money(net.fees),
        "net": money(net.net),
        "direction": net.direction,
        "who_pays": WHO_PAYS[net.direction].format(partner=legal_name)
        + ("" if not net.net else f": {money(abs(net.net))} {currency}"),
        "opening_position": money(opening_position),
        "closing_position": money(opening_position + net.net),
        "contract_versions": [
            {
                "version": v.version,
                "effective_from": utc_text(v.effective_from),
                "sha256": v.sha256,
                "issue_rate": str(v.issue_rate),
                "redemption_rate": str(v.redemption_rate),
                "fee_per_entry": str(v.fee_per_entry),
                "max_points_per_transaction": v.max_points_per_transaction,
                "max_points_per_member_per_day": v.max_points_per_member_per_day,
            }
            for v in versions
            if v.version in used
        ],
    }


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
    ledger_root: bytes,
    generated_at: Any,
) -> dict[str, Any]:
    total = sum((n.net for n in nets), Decimal("0.00"))
    return {
        "statement_id": f"{period}/{COALITION_PARTY}",
        "sequence": sequence,
        "coalition": coalition,
        "partner_id": None,
        "period": period,
        "currency": currency,
        "generated_at": utc_text(generated_at),
        "ledger_root": ledger_root.hex(),
        "partners": [
            {
                "partner_id": n.partner_id,
                "legal_name": legal_names[n.partner_id],
                "issue_amount": money(n.issue_amount),
                "redemption_amount": money(n.redemption_amount),
                "fees": money(n.fees),
                "net": money(n.net),
                "direction": n.direction,
            }
            for n in nets
        ],
        "partners_net_total": money(total),
        "coalition_margin": money(margin),
        "multilateral_check": money(total + margin),
        "points_roll_forward": {
            "opening": roll_forward.opening,
            "issued": roll_forward.issued,
            "redeemed": roll_forward.redeemed,
            "expired": roll_forward.expired,
            "adjusted": roll_forward.adjusted,
            "closing": roll_forward.closing,
            "member_balances_at_cut_off": roll_forward.closing_member_balances,
        },
    }
