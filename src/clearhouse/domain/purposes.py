"""Purposes, the fields a contract can grant, and the disclosure decision (SPEC section 6).

A partner declares one purpose per request. Whether it gets member data, and which, is decided by
one function, ``decide_disclosure``, from the contract version in force, the declared purpose and
the member's consents: the purpose must be in the contract; a purpose whose legal basis is
``consent`` needs the member's current consent for this partner (or for all partners, ``*``);
and the answer holds only the fields the contract grants for that purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

ALL_PARTNERS: Final = "*"


class Purpose(StrEnum):
    """Why a partner asks for or sends data; mapped to DPV 2.0 in docs/data-protection.md."""

    ENROLMENT = "enrolment"
    ACCRUAL = "accrual"
    REDEMPTION = "redemption"
    CUSTOMER_SERVICE = "customer_service"
    SETTLEMENT = "settlement"
    FRAUD_PREVENTION = "fraud_prevention"
    MARKETING = "marketing"
    ANALYTICS = "analytics"
    CONSENT_MANAGEMENT = "consent_management"


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) bases."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTEREST = "legitimate_interest"


class DataField(StrEnum):
    """What a contract can grant a partner to see."""

    GIVEN_NAME = "member.given_name"
    FAMILY_NAME = "member.family_name"
    EMAIL = "member.email"
    BIRTH_DATE = "member.birth_date"
    POSTAL_CODE = "member.postal_code"
    BALANCE = "member.balance"
    OWN_TRANSACTIONS = "transactions.own"


PERSONAL_FIELDS: Final = frozenset(
    {
        DataField.GIVEN_NAME,
        DataField.FAMILY_NAME,
        DataField.EMAIL,
        DataField.BIRTH_DATE,
        DataField.POSTAL_CODE,
    }
)
"""The fields stored encrypted, and gone for good after an erasure."""


@dataclass(frozen=True, slots=True)
class PurposeGrant:
    """What one contract version grants for one purpose."""

    legal_basis: LegalBasis
    fields: frozenset[DataField]
    retention_days: int | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One statement of a member: consent given or withdrawn, to one partner or to all (``*``)."""

    partner_id: str
    purpose: Purpose
    granted: bool
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class DisclosureDecision:
    """The outcome for one request: allowed or not, why, and exactly which fields."""

    allowed: bool
    code: str | None
    """``purpose_not_permitted`` or ``consent_required`` when refused."""
    reason: str
    fields: frozenset[DataField]
    legal_basis: LegalBasis | None


def current_consent(
    consents: Iterable[ConsentRecord], partner_id: str, purpose: Purpose
) -> ConsentRecord | None:
    """The member's latest statement that covers this partner and purpose.

    A statement to this partner and one to all partners (``*``) both cover it; the later wins,
    so a withdrawal for one partner after a consent to all is a withdrawal, and a new consent
    to all after that covers the partner again.
    """
    covering = [
        c for c in consents if c.purpose is purpose and c.partner_id in (partner_id, ALL_PARTNERS)
    ]
    if not covering:
        return None
    # At the same instant, the partner's own statement outranks the one to all partners.
    return max(covering, key=lambda c: (c.recorded_at, c.partner_id != ALL_PARTNERS))


def decide_disclosure(
    grants: Mapping[Purpose, PurposeGrant] | None,
    partner_id: str,
    purpose: Purpose,
    consents: Iterable[ConsentRecord],
    requested: Iterable[DataField],
) -> DisclosureDecision:
    """May ``partner_id`` see ``requested`` for ``purpose``? And which of it exactly?

    ``grants`` are the purposes of the partner's contract version in force (None: no version in
    force). The answer never holds a field the contract does not grant for this purpose.
    """
    if grants is None:
        return DisclosureDecision(
            False, "purpose_not_permitted", "no contract version is in force", frozenset(), None
        )
    grant = grants.get(purpose)
    if grant is None:
        return DisclosureDecision(
            False,
            "purpose_not_permitted",
            f"the contract grants nothing for the purpose {purpose.value}",
            frozenset(),
            None,
        )
    if grant.legal_basis is LegalBasis.CONSENT:
        consent = current_consent(consents, partner_id, purpose)
        if consent is None or not consent.granted:
            return DisclosureDecision(
                False,
                "consent_required",
                f"the member has not consented to {purpose.value} by this partner",
                frozenset(),
                grant.legal_basis,
            )
    fields = frozenset(requested) & grant.fields
    return DisclosureDecision(
        True,
        None,
        f"granted by the contract on the basis of {grant.legal_basis.value}",
        fields,
        grant.legal_basis,
    )
