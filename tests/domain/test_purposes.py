"""The disclosure decision over purposes, legal bases, consent states and contract versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.domain.purposes import (
    ALL_PARTNERS,
    ConsentRecord,
    DataField,
    LegalBasis,
    Purpose,
    PurposeGrant,
    current_consent,
    decide_disclosure,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PARTNER = "baeckerei"
EVERYTHING = frozenset(DataField)

V1 = {
    Purpose.MARKETING: PurposeGrant(
        LegalBasis.CONSENT, frozenset({DataField.EMAIL, DataField.POSTAL_CODE})
    ),
    Purpose.CUSTOMER_SERVICE: PurposeGrant(
        LegalBasis.LEGITIMATE_INTEREST, frozenset({DataField.GIVEN_NAME, DataField.BALANCE})
    ),
    Purpose.SETTLEMENT: PurposeGrant(
        LegalBasis.LEGAL_OBLIGATION, frozenset({DataField.OWN_TRANSACTIONS})
    ),
}
# Version 2 takes the postal code away from marketing.
V2 = {**V1, Purpose.MARKETING: PurposeGrant(LegalBasis.CONSENT, frozenset({DataField.EMAIL}))}


def consent(partner: str, purpose: Purpose, granted: bool, minutes: int) -> ConsentRecord:
    return ConsentRecord(partner, purpose, granted, T0 + timedelta(minutes=minutes))


GIVEN = [consent(PARTNER, Purpose.MARKETING, True, 1)]
WITHDRAWN = [*GIVEN, consent(PARTNER, Purpose.MARKETING, False, 2)]
TO_ALL = [consent(ALL_PARTNERS, Purpose.MARKETING, True, 1)]
TO_ALL_THEN_WITHDRAWN_HERE = [*TO_ALL, consent(PARTNER, Purpose.MARKETING, False, 2)]
WITHDRAWN_THEN_TO_ALL = [*WITHDRAWN, consent(ALL_PARTNERS, Purpose.MARKETING, True, 3)]
TO_ANOTHER_PARTNER = [consent("tankstelle", Purpose.MARKETING, True, 1)]
OTHER_PURPOSE = [consent(PARTNER, Purpose.ANALYTICS, True, 1)]


@pytest.mark.parametrize(
    ("grants", "purpose", "consents", "code", "fields"),
    [
        # a purpose the contract grants on a basis other than consent: no consent needed
        (V1, Purpose.CUSTOMER_SERVICE, [], None, {DataField.GIVEN_NAME, DataField.BALANCE}),
        (V1, Purpose.SETTLEMENT, WITHDRAWN, None, {DataField.OWN_TRANSACTIONS}),
        # consent-based: every consent state
        (V1, Purpose.MARKETING, [], "consent_required", set()),
        (V1, Purpose.MARKETING, GIVEN, None, {DataField.EMAIL, DataField.POSTAL_CODE}),
        (V1, Purpose.MARKETING, WITHDRAWN, "consent_required", set()),
        (V1, Purpose.MARKETING, TO_ALL, None, {DataField.EMAIL, DataField.POSTAL_CODE}),
        (V1, Purpose.MARKETING, TO_ALL_THEN_WITHDRAWN_HERE, "consent_required", set()),
        (
            V1,
            Purpose.MARKETING,
            WITHDRAWN_THEN_TO_ALL,
            None,
            {DataField.EMAIL, DataField.POSTAL_CODE},
        ),
        (V1, Purpose.MARKETING, TO_ANOTHER_PARTNER, "consent_required", set()),
        (V1, Purpose.MARKETING, OTHER_PURPOSE, "consent_required", set()),
        # version 2 takes the postal code away
        (V2, Purpose.MARKETING, GIVEN, None, {DataField.EMAIL}),
        (V2, Purpose.MARKETING, TO_ALL, None, {DataField.EMAIL}),
        # a purpose absent from the contract, whatever the consents
        (V1, Purpose.ANALYTICS, OTHER_PURPOSE, "purpose_not_permitted", set()),
        (V2, Purpose.FRAUD_PREVENTION, [], "purpose_not_permitted", set()),
        # no contract version in force
        (None, Purpose.CUSTOMER_SERVICE, GIVEN, "purpose_not_permitted", set()),
    ],
)
def test_disclosure_decision_table(
    grants: dict[Purpose, PurposeGrant] | None,
    purpose: Purpose,
    consents: list[ConsentRecord],
    code: str | None,
    fields: set[DataField],
) -> None:
    decision = decide_disclosure(grants, PARTNER, purpose, consents, EVERYTHING)
    assert decision.code == code
    assert decision.allowed is (code is None)
    assert decision.fields == fields
    assert decision.reason


def test_a_consent_withdrawn_between_two_requests_stops_the_second() -> None:
    first = decide_disclosure(V1, PARTNER, Purpose.MARKETING, GIVEN, EVERYTHING)
    second = decide_disclosure(V1, PARTNER, Purpose.MARKETING, WITHDRAWN, EVERYTHING)
    assert first.allowed
    assert not second.allowed
    assert second.code == "consent_required"


def test_only_requested_fields_are_disclosed() -> None:
    decision = decide_disclosure(
        V1, PARTNER, Purpose.CUSTOMER_SERVICE, [], {DataField.BALANCE, DataField.EMAIL}
    )
    assert decision.fields == {DataField.BALANCE}


def test_at_the_same_instant_the_partners_own_statement_wins() -> None:
    tie = [
        consent(ALL_PARTNERS, Purpose.MARKETING, True, 5),
        consent(PARTNER, Purpose.MARKETING, False, 5),
    ]
    found = current_consent(tie, PARTNER, Purpose.MARKETING)
    assert found is not None
    assert found.granted is False


purposes = st.sampled_from(list(Purpose))
fields = st.frozensets(st.sampled_from(list(DataField)))
grants = st.dictionaries(
    purposes,
    st.builds(PurposeGrant, st.sampled_from(list(LegalBasis)), fields),
)
partners = st.sampled_from([PARTNER, "tankstelle", ALL_PARTNERS])
consents = st.lists(
    st.builds(
        ConsentRecord,
        partners,
        purposes,
        st.booleans(),
        st.datetimes(timezones=st.just(UTC)),
    ),
    max_size=8,
)


@given(grants=st.none() | grants, purpose=purposes, consents=consents, requested=fields)
def test_never_a_field_the_contract_does_not_grant_for_the_purpose(
    grants: dict[Purpose, PurposeGrant] | None,
    purpose: Purpose,
    consents: list[ConsentRecord],
    requested: frozenset[DataField],
) -> None:
    decision = decide_disclosure(grants, PARTNER, purpose, consents, requested)
    granted = frozenset() if grants is None or purpose not in grants else grants[purpose].fields
    assert decision.fields <= granted
    assert decision.fields <= requested
    if not decision.allowed:
        assert decision.fields == frozenset()
    if (
        grants is not None
        and purpose in grants
        and grants[purpose].legal_basis is LegalBasis.CONSENT
    ):
        latest = current_consent(consents, PARTNER, purpose)
        assert decision.allowed is (latest is not None and latest.granted)
