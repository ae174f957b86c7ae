"""The signed bytes of a statement, pinned: built from fixed figures, a partner's and the
coalition's statement canonicalise to exactly the document written out by hand below, as the
reference RFC 8785 package writes it, and to a SHA-256 fixed here.

The expected documents are typed in by hand from the figures, not taken from the code under
test; the hashes are those of ``rfc8785.dumps`` of these documents. A change that moves one byte
of a statement (a key renamed, a rate written otherwise, a ``null`` left out) fails here, so an
issued statement can always be rebuilt and verified as it was signed.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.crypto.ed25519 import CoalitionKey, verify
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.netting import LineKind, PartnerNet, PointsRollForward, StatementLine
from clearhouse.statements.documents import (
    SignedStatement,
    coalition_document,
    partner_document,
    sign_statement,
)
from clearhouse.statements.model import Statement

KEY: Final = CoalitionKey.of(Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64))))
BERLIN: Final = ZoneInfo("Europe/Berlin")
LEDGER_ROOT: Final = bytes(range(32))
GENERATED_AT: Final = datetime(2026, 12, 1, 8, 30, 12, 481022, tzinfo=BERLIN)
BAKERY: Final = "baeckerei-schmidt"
SHOP: Final = "shopwelt"
KIOSK: Final = "kiosk"
LEGAL_NAMES: Final = {
    BAKERY: "Bäckerei Schmidt GmbH",
    SHOP: '=Shopwelt "Online" AG \\ 🛒',
    KIOSK: "Kiosk am Markt e.K.",
}

PARTNER_SHA256: Final = "da36d9a6274d4b27cfa935b9c81741fe8d306b9d7dbed890c323d29b32ade8da"
COALITION_SHA256: Final = "394fa4cdda98eb7d6e8d74d49013f21332241da42250ed484cc5c1c1a379691d"


def version(
    number: int,
    effective_from: datetime,
    *,
    issue_rate: str,
    redemption_rate: str,
    fee: str,
    limits: tuple[int, int],
    sha256: str,
) -> ContractVersion:
    return ContractVersion(
        partner_id=BAKERY,
        version=number,
        effective_from=effective_from,
        legal_name=LEGAL_NAMES[BAKERY],
        currency="EUR",
        issue_rate=Decimal(issue_rate),
        redemption_rate=Decimal(redemption_rate),
        fee_per_entry=Decimal(fee),
        max_points_per_transaction=limits[0],
        max_points_per_member_per_day=limits[1],
        grants={},
        sha256=sha256,
        source="",
    )


VERSIONS: Final = [
    version(
        1,
        datetime(2026, 1, 1, tzinfo=BERLIN),
        issue_rate="0.0100",
        redemption_rate="0.0080",
        fee="0.0000",
        limits=(5000, 20000),
        sha256="a" * 64,
    ),
    version(
        2,
        datetime(2026, 11, 15, tzinfo=BERLIN),
        issue_rate="0.0125",
        redemption_rate="0.009",
        fee="0.05",
        limits=(6000, 25000),
        sha256="b" * 64,
    ),
    # In force only after the period: it has no line, so the statement does not list it.
    version(
        3,
        datetime(2027, 1, 1, tzinfo=BERLIN),
        issue_rate="0.02",
        redemption_rate="0.01",
        fee="0",
        limits=(1, 1),
        sha256="c" * 64,
    ),
]

# The bakery pays: issues 9.50 + 6.25, redemptions 1.60 + 3.00 (333 x 0.009 = 2.997), a fee of
# 7 entries x 0.05; net 4.60 - 15.75 - 0.35 = -11.50.
BAKERY_NET: Final = PartnerNet(
    BAKERY,
    (
        StatementLine(1, LineKind.ISSUE, 1000, 50, 950, Decimal("0.0100"), Decimal("9.50")),
        StatementLine(1, LineKind.REDEMPTION, 200, 0, 200, Decimal("0.0080"), Decimal("1.6")),
        StatementLine(2, LineKind.FEE, 0, 0, 7, Decimal("0.05"), Decimal("0.35")),
        StatementLine(2, LineKind.ISSUE, 501, 1, 500, Decimal("0.0125"), Decimal("6.25")),
        StatementLine(2, LineKind.REDEMPTION, 333, 0, 333, Decimal("0.009"), Decimal("3.00")),
    ),
    issue_amount=Decimal("15.75"),
    redemption_amount=Decimal("4.60"),
    fees=Decimal("0.35"),
    net=Decimal("-11.50"),
)
# The shop is paid 44.10 - 12.00 = 32.10; the kiosk's issues and redemptions cancel out.
SHOP_NET: Final = PartnerNet(
    SHOP, (), Decimal("12.00"), Decimal("44.10"), Decimal("0.00"), Decimal("32.10")
)
KIOSK_NET: Final = PartnerNet(
    KIOSK, (), Decimal("7.00"), Decimal("7.00"), Decimal("0.00"), Decimal("0.00")
)


def signed(document: Statement) -> SignedStatement:
    """The statement as settling signs it."""
    return sign_statement(document, KEY)


def bakery_statement() -> SignedStatement:
    return signed(
        partner_document(
            period="2026-11",
            sequence=4,
            coalition="Clearhouse coalition",
            net=BAKERY_NET,
            legal_name=LEGAL_NAMES[BAKERY],
            currency="EUR",
            versions=VERSIONS,
            entries=27,
            ledger_root=LEDGER_ROOT,
            generated_at=GENERATED_AT,
            opening_position=Decimal("-1234.5"),
        )
    )


def coalition_statement() -> SignedStatement:
    return signed(
        coalition_document(
            period="2026-11",
            sequence=9,
            coalition="Clearhouse coalition",
            currency="EUR",
            nets=[BAKERY_NET, SHOP_NET, KIOSK_NET],
            legal_names=LEGAL_NAMES,
            margin=Decimal("-20.60"),
            roll_forward=PointsRollForward(
                opening=1_000_000,
                issued=2_650,
                redeemed=6_133,
                expired=1_500,
                adjusted=-20,
                closing_member_balances=994_997,
            ),
            open_holds=(2, 750),
            ledger_root=LEDGER_ROOT,
            generated_at=GENERATED_AT,
        )
    )


ROOT_HEX: Final = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
GENERATED_TEXT: Final = "2026-12-01T07:30:12.481022Z"

EXPECTED_PARTNER: Final[dict[str, Any]] = {
    "statement_id": "2026-11/baeckerei-schmidt",
    "sequence": 4,
    "coalition": "Clearhouse coalition",
    "partner_id": "baeckerei-schmidt",
    "legal_name": "Bäckerei Schmidt GmbH",
    "period": "2026-11",
    "currency": "EUR",
    "generated_at": GENERATED_TEXT,
    "ledger_root": ROOT_HEX,
    "entries": 27,
    "lines": [
        {
            "contract_version": 1,
            "kind": "issue",
            "points": 1000,
            "reversed_points": 50,
            "quantity": 950,
            "rate": "0.0100",
            "amount": "9.50",
        },
        {
            "contract_version": 1,
            "kind": "redemption",
            "points": 200,
            "reversed_points": 0,
            "quantity": 200,
            "rate": "0.0080",
            "amount": "1.60",
        },
        {
            "contract_version": 2,
            "kind": "fee",
            "points": 0,
            "reversed_points": 0,
            "quantity": 7,
            "rate": "0.05",
            "amount": "0.35",
        },
        {
            "contract_version": 2,
            "kind": "issue",
            "points": 501,
            "reversed_points": 1,
            "quantity": 500,
            "rate": "0.0125",
            "amount": "6.25",
        },
        {
            "contract_version": 2,
            "kind": "redemption",
            "points": 333,
            "reversed_points": 0,
            "quantity": 333,
            "rate": "0.009",
            "amount": "3.00",
        },
    ],
    "issue_amount": "15.75",
    "redemption_amount": "4.60",
    "fees": "0.35",
    "net": "-11.50",
    "direction": "partner_pays_coalition",
    "who_pays": "Bäckerei Schmidt GmbH pays the coalition: 11.50 EUR",
    "opening_position": "-1234.50",
    "closing_position": "-1246.00",
    "contract_versions": [
        {
            "version": 1,
            "effective_from": "2025-12-31T23:00:00.000000Z",
            "sha256": "a" * 64,
            "issue_rate": "0.0100",
            "redemption_rate": "0.0080",
            "fee_per_entry": "0.0000",
            "max_points_per_transaction": 5000,
            "max_points_per_member_per_day": 20000,
        },
        {
            "version": 2,
            "effective_from": "2026-11-14T23:00:00.000000Z",
            "sha256": "b" * 64,
            "issue_rate": "0.0125",
            "redemption_rate": "0.009",
            "fee_per_entry": "0.05",
            "max_points_per_transaction": 6000,
            "max_points_per_member_per_day": 25000,
        },
    ],
}

EXPECTED_COALITION: Final[dict[str, Any]] = {
    "statement_id": "2026-11/coalition",
    "sequence": 9,
    "coalition": "Clearhouse coalition",
    "partner_id": None,
    "period": "2026-11",
    "currency": "EUR",
    "generated_at": GENERATED_TEXT,
    "ledger_root": ROOT_HEX,
    "partners": [
        {
            "partner_id": "baeckerei-schmidt",
            "legal_name": "Bäckerei Schmidt GmbH",
            "issue_amount": "15.75",
            "redemption_amount": "4.60",
            "fees": "0.35",
            "net": "-11.50",
            "direction": "partner_pays_coalition",
        },
        {
            "partner_id": "shopwelt",
            "legal_name": '=Shopwelt "Online" AG \\ 🛒',
            "issue_amount": "12.00",
            "redemption_amount": "44.10",
            "fees": "0.00",
            "net": "32.10",
            "direction": "coalition_pays_partner",
        },
        {
            "partner_id": "kiosk",
            "legal_name": "Kiosk am Markt e.K.",
            "issue_amount": "7.00",
            "redemption_amount": "7.00",
            "fees": "0.00",
            "net": "0.00",
            "direction": "nothing_due",
        },
    ],
    "partners_net_total": "20.60",
    "coalition_margin": "-20.60",
    "multilateral_check": "0.00",
    "open_holds_at_cut_off": {"holds": 2, "points": 750},
    "points_roll_forward": {
        "opening": 1_000_000,
        "issued": 2_650,
        "redeemed": 6_133,
        "expired": 1_500,
        "adjusted": -20,
        "closing": 994_997,
        "member_balances_at_cut_off": 994_997,
    },
}


def integrity_of(statement: SignedStatement) -> dict[str, str]:
    return {
        "algorithm": "ed25519",
        "canonicalization": "RFC 8785 (JCS), without this integrity block",
        "key_id": KEY.key_id,
        "sha256": hashlib.sha256(statement.document).hexdigest(),
        "signature": base64.b64encode(statement.signature).decode(),
    }


def test_the_pinned_hashes_are_those_of_the_documents_written_out_here() -> None:
    assert hashlib.sha256(rfc8785.dumps(EXPECTED_PARTNER)).hexdigest() == PARTNER_SHA256
    assert hashlib.sha256(rfc8785.dumps(EXPECTED_COALITION)).hexdigest() == COALITION_SHA256


def test_a_partner_statement_signs_exactly_the_reference_bytes() -> None:
    statement = bakery_statement()

    assert statement.document == rfc8785.dumps(EXPECTED_PARTNER)
    assert statement.sha256.hex() == PARTNER_SHA256
    assert verify(KEY.public_key, statement.signature, statement.document)
    assert (statement.party, statement.sequence, statement.key_id) == (BAKERY, 4, KEY.key_id)


def test_a_coalition_statement_signs_exactly_the_reference_bytes_with_a_null_partner() -> None:
    statement = coalition_statement()

    assert statement.document == rfc8785.dumps(EXPECTED_COALITION)
    assert b'"partner_id":null' in statement.document
    assert statement.sha256.hex() == COALITION_SHA256
    assert verify(KEY.public_key, statement.signature, statement.document)
    assert (statement.party, statement.sequence) == ("coalition", 9)


def test_the_served_statement_is_the_signed_bytes_with_the_integrity_block_last() -> None:
    for statement in (bakery_statement(), coalition_statement()):
        integrity = rfc8785.dumps(integrity_of(statement))
        expected = statement.document[:-1] + b',"integrity":' + integrity + b"}"

        assert statement.served_json() == expected
        assert msgspec.json.encode(statement.with_integrity()) == expected


def test_the_integrity_block_is_made_of_the_signed_bytes() -> None:
    statement = coalition_statement()

    assert msgspec.to_builtins(statement.with_integrity())["integrity"] == integrity_of(statement)
    assert statement.sha256 == hashlib.sha256(statement.document).digest()
