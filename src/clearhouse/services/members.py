"""Members: enrolment, reading under a purpose, consents, erasure, the access report.

Personal fields are encrypted under a key of the member's own (``crypto.aead``) before they
reach the database. Every read by a partner goes through ``decide_disclosure`` with the
contract version in force and the member's consents read at one moment, returns only the
granted fields, and is written to the append-only disclosure log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

import asyncpg

from clearhouse.crypto import aead
from clearhouse.domain.errors import (
    ConsentRequired,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    MemberErased,
    NotFound,
    PurposeNotPermitted,
)
from clearhouse.domain.expiry import ExpiringPoints, validate_within_days
from clearhouse.domain.idempotency import request_fingerprint, validate_idempotency_key
from clearhouse.domain.ledger import validate_identifier
from clearhouse.domain.purposes import (
    ALL_PARTNERS,
    PERSONAL_FIELDS,
    ConsentRecord,
    DataField,
    DisclosureDecision,
    Purpose,
    decide_disclosure,
)
from clearhouse.domain.records import Disclosure
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.storage import expiry as expiry_store
from clearhouse.storage import ledger as ledger_store
from clearhouse.storage import members as store

PERSONAL_LENGTH_MAX: Final = 200
OWN_TRANSACTIONS_SHOWN: Final = 50
EMAIL_PATTERN: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
POSTAL_CODE_PATTERN: Final = re.compile(r"^[A-Za-z0-9 -]{2,16}$")


@dataclass(frozen=True, slots=True)
class ConsentStatement:
    purpose: Purpose
    granted: bool
    all_partners: bool = False


@dataclass(frozen=True, slots=True)
class Enrolment:
    member_id: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class MemberView:
    """What a partner gets: only the granted fields, under one purpose and contract version."""

    member_id: str
    purpose: Purpose
    contract_version: int
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """What an operator may see of a member without personal data: balance and consents."""

    member_id: str
    enrolled_by: str | None
    enrolled_at: datetime
    erased_at: datetime | None
    balance_points: int
    consents: list[tuple[str, str, bool, datetime]]
    """The latest decision per partner and purpose: (partner, purpose, granted, recorded_at)."""


async def member_standing(database: Database, member_id: str) -> MemberStanding:
    """The member's balance and current consents; no personal data."""
    async with database.driver_connection() as connection:
        member = await store.fetch_member(connection, member_id)
        if member is None:
            raise NotFound(f"no member {member_id}")
        consents = await store.current_consents(connection, member_id)
    return MemberStanding(
        member_id=member.member_id,
        enrolled_by=member.enrolled_by,
        enrolled_at=member.created_at,
        erased_at=member.erased_at,
        balance_points=member.balance_points,
        consents=consents,
    )


def validate_personal(personal: Mapping[str, str]) -> dict[DataField, str]:
    """Personal fields as given at enrolment: known names, bounded, plausible."""
    clean: dict[DataField, str] = {}
    for name, value in personal.items():
        at = ("personal", name)
        field = DataField(f"member.{name}") if f"member.{name}" in set(DataField) else None
        if field is None or field not in PERSONAL_FIELDS:
            raise InvalidRequest(f"personal.{name} is not a personal field", field=at)
        if not isinstance(value, str) or not 1 <= len(value) <= PERSONAL_LENGTH_MAX:
            raise InvalidRequest(
                f"personal.{name} must be 1 to {PERSONAL_LENGTH_MAX} characters", field=at
            )
        if any(ord(ch) < 0x20 for ch in value):
            raise InvalidRequest(f"personal.{name} must not hold control characters", field=at)
        if field is DataField.EMAIL and not EMAIL_PATTERN.match(value):
            raise InvalidRequest("personal.email is not an e-mail address", field=at)
        if field is DataField.POSTAL_CODE and not POSTAL_CODE_PATTERN.match(value):
            raise InvalidRequest("personal.postal_code is not a postal code", field=at)
        if field is DataField.BIRTH_DATE:
            try:
                born = date.fromisoformat(value)
            except ValueError as exc:
                raise InvalidRequest("personal.birth_date must be YYYY-MM-DD", field=at) from exc
            if born.year < 1900:
                raise InvalidRequest("personal.birth_date lies before 1900", field=at)
        clean[field] = value
    return clean


def _refuse_consents_to_all(statements: Sequence[ConsentStatement]) -> None:
    if any(s.all_partners for s in statements):
        raise Forbidden(
            "a partner records consents to itself only; a consent to all partners is "
            "recorded by the coalition's operator"
        )


class Members:
    """The member jobs of partners and operators."""

    def __init__(self, database: Database, contracts: ContractBook, master_key: bytes) -> None:
        self._database = database
        self._contracts = contracts
        self._master_key = master_key

    async def _grants_at(self, partner_id: str, state: store.ConsentState) -> Any:
        """The partner's version in force at the moment ``state`` was read (exact)."""
        version = await self._contracts.in_force(partner_id, state.now)
        if (None if version is None else version.version) != state.version_in_force:
            self._contracts.forget(partner_id)
            version = await self._contracts.in_force(partner_id, state.now)
        return version

    async def enrol(
        self,
        partner_id: str,
        *,
        member_id: str | None,
        personal: Mapping[str, str],
        consents: Sequence[ConsentStatement],
        idempotency_key: str,
        request_id: str | None = None,
    ) -> Enrolment:
        """Enrol a member with their personal data (encrypted) and consents, all or nothing.

        An id that exists already is linked to this partner instead, with the consents given
        to it; the personal fields sent are not stored (the member's are those of the first
        enrolment) and the answer is that of a first enrolment, so that it tells nothing of
        the member's other partners (docs/data-protection.md, "Enrolling a known card").
        """
        validate_idempotency_key(idempotency_key)
        await self._contracts.require_grant(partner_id, Purpose.ENROLMENT)
        _refuse_consents_to_all(consents)
        fields = validate_personal(personal)
        fingerprint = request_fingerprint(
            "enrol",
            {
                "member_id": member_id,
                "personal": {k.value: v for k, v in sorted(fields.items())},
                "consents": [(c.purpose.value, c.granted, c.all_partners) for c in consents],
            },
        )
        if member_id is None:
            member_id = f"m-{uuid.uuid4().hex[:20]}"
        validate_identifier(member_id, name="member_id")
        data_key = aead.new_data_key()
        ciphertexts = {
            field.value: aead.encrypt_field(data_key, member_id, field.value, value)
            for field, value in fields.items()
        }
        try:
            async with self._database.transaction() as connection:
                await connection.execute(
                    """
                    INSERT INTO idempotency_keys
                        (partner_id, idempotency_key, request_sha256, member_id)
                    VALUES ($1, $2, $3, $4)
                    """,
                    partner_id,
                    idempotency_key,
                    fingerprint,
                    member_id,
                )
                created = await store.insert_member(
                    connection,
                    member_id,
                    partner_id,
                    aead.wrap_key(self._master_key, member_id, data_key),
                    ciphertexts,
                )
                if not created:
                    await store.link_member(connection, member_id, partner_id, request_id)
                await store.insert_consents(
                    connection,
                    member_id,
                    [(partner_id, c.purpose, c.granted) for c in consents],
                    partner_id,
                    request_id,
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "idempotency_keys_pkey":
                raise
            return await self._replayed_enrolment(partner_id, idempotency_key, fingerprint)
        return Enrolment(member_id, replayed=False)

    async def _replayed_enrolment(
        self, partner_id: str, idempotency_key: str, fingerprint: bytes
    ) -> Enrolment:
        async with self._database.driver_connection() as connection:
            row = await connection.fetchrow(
                """
                SELECT request_sha256, member_id FROM idempotency_keys
                 WHERE partner_id = $1 AND idempotency_key = $2
                """,
                partner_id,
                idempotency_key,
            )
        if row is None or row["member_id"] is None or bytes(row["request_sha256"]) != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used before with a different request"
            )
        return Enrolment(row["member_id"], replayed=True)

    async def decide(
        self, partner_id: str, member_id: str, purpose: Purpose
    ) -> tuple[DisclosureDecision, int | None, bool]:
        """The disclosure decision for this partner, member and purpose, at the ledger clock,
        and whether the member is related to the partner."""
        async with self._database.driver_connection() as connection:
            state = await store.fetch_consent_state(connection, member_id, partner_id)
        version = await self._grants_at(partner_id, state)
        decision = decide_disclosure(
            None if version is None else version.grants,
            partner_id,
            purpose,
            state.consents,
            set(DataField),
        )
        return decision, None if version is None else version.version, state.related

    async def read(
        self, partner_id: str, member_id: str, purpose: Purpose, request_id: str
    ) -> MemberView:
        """The member as ``purpose`` allows ``partner_id`` to see them; logged as a disclosure.

        In order: the contract must grant the purpose (``purpose_not_permitted``, whoever the
        member is); a member unknown or not related to the partner is ``not_found``, exactly
        alike; then the member's consent and erasure.
        """
        decision, version = await self._permitted(partner_id, member_id, purpose)
        assert decision.legal_basis is not None
        async with self._database.transaction() as connection:
            member = await store.fetch_member(connection, member_id)
            if member is None:
                raise NotFound(f"no member {member_id}")
            if member.erased_at is not None:
                raise MemberErased(f"member {member_id} was erased")
            shown = self._fields(member, decision.fields)
            if DataField.OWN_TRANSACTIONS in decision.fields:
                rows = await store.own_entries_of_member(
                    connection, partner_id, member_id, OWN_TRANSACTIONS_SHOWN
                )
                shown["transactions"] = [
                    {
                        "entry_id": str(r["entry_id"]),
                        "kind": r["kind"],
                        "points": r["points"],
                        "recorded_at": r["recorded_at"],
                        "reference": r["reference"],
                        "reversal_of": None if r["reversal_of"] is None else str(r["reversal_of"]),
                    }
                    for r in rows
                ]
            disclosed = sorted(
                f.value
                for f in decision.fields
                if f not in PERSONAL_FIELDS or f.value.removeprefix("member.") in shown
            )
            await store.insert_disclosure(
                connection,
                partner_id,
                member_id,
                purpose.value,
                disclosed,
                version,
                decision.legal_basis.value,
                request_id,
            )
        return MemberView(member_id, purpose, version, shown)

    async def _permitted(
        self, partner_id: str, member_id: str, purpose: Purpose
    ) -> tuple[DisclosureDecision, int]:
        """The decision and contract version when ``purpose`` lets the partner see the member;
        otherwise the refusal, in the order ``read`` states."""
        decision, version, related = await self.decide(partner_id, member_id, purpose)
        if decision.code == "purpose_not_permitted":
            raise PurposeNotPermitted(decision.reason)
        if not related:
            raise NotFound(f"no member {member_id}")
        if not decision.allowed:
            raise ConsentRequired(decision.reason)
        assert version is not None
        return decision, version

    async def expiring(
        self, partner_id: str, member_id: str, within_days: int, request_id: str
    ) -> list[ExpiringPoints]:
        """The member's points that expire within ``within_days`` days unless redeemed, for
        ``customer_service`` (its contract must grant ``member.balance``); a disclosure."""
        validate_within_days(within_days)
        decision, version = await self._permitted(partner_id, member_id, Purpose.CUSTOMER_SERVICE)
        if DataField.BALANCE not in decision.fields:
            raise PurposeNotPermitted("the contract grants no member.balance for customer_service")
        assert decision.legal_basis is not None
        async with self._database.transaction() as connection:
            member = await store.fetch_member(connection, member_id)
            if member is None:
                raise NotFound(f"no member {member_id}")
            if member.erased_at is not None:
                raise MemberErased(f"member {member_id} was erased")
            now = await ledger_store.ledger_now(connection)
            found = await expiry_store.member_expiring(
                connection, member_id, now, now + timedelta(days=within_days)
            )
            await store.insert_disclosure(
                connection,
                partner_id,
                member_id,
                Purpose.CUSTOMER_SERVICE.value,
                [DataField.BALANCE.value],
                version,
                decision.legal_basis.value,
                request_id,
            )
        return found

    def _fields(self, member: store.MemberRow, granted: frozenset[DataField]) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        if DataField.BALANCE in granted:
            shown["balance"] = member.balance_points
        personal = [f for f in granted if f in PERSONAL_FIELDS and f.value in member.ciphertexts]
        if personal and member.wrapped_key is not None:
            data_key = aead.unwrap_key(self._master_key, member.member_id, member.wrapped_key)
            for field in personal:
                name = field.value.removeprefix("member.")
                shown[name] = aead.decrypt_field(
                    data_key, member.member_id, field.value, member.ciphertexts[field.value]
                )
        return shown

    async def record_consents(
        self,
        partner_id: str,
        member_id: str,
        statements: Sequence[ConsentStatement],
        request_id: str | None = None,
    ) -> list[ConsentRecord]:
        """Append consents given or withdrawn to this partner; they bind from the next request.

        A partner writes consents for itself only, and only for a member related to it (any
        other is ``not_found``, as an unknown id); consents to all partners are the operator's
        (``record_consents_as_operator``).
        """
        await self._contracts.require_grant(partner_id, Purpose.CONSENT_MANAGEMENT)
        if not statements:
            raise InvalidRequest("give at least one consent", field="consents")
        _refuse_consents_to_all(statements)
        async with self._database.transaction() as connection:
            state = await store.fetch_consent_state(connection, member_id, partner_id)
            member = await store.fetch_member(connection, member_id) if state.related else None
            if member is None:
                raise NotFound(f"no member {member_id}")
            if member.erased_at is not None:
                raise MemberErased(f"member {member_id} was erased")
            await store.insert_consents(
                connection,
                member_id,
                [(partner_id, s.purpose, s.granted) for s in statements],
                partner_id,
                request_id,
            )
            state = await store.fetch_consent_state(connection, member_id, partner_id)
        return [c for c in state.consents if c.partner_id in (partner_id, ALL_PARTNERS)]

    async def record_consents_as_operator(
        self,
        member_id: str,
        statements: Sequence[tuple[str, Purpose, bool]],
        request_id: str | None = None,
    ) -> list[ConsentRecord]:
        """Consents the member gave or withdrew through the coalition itself: to one partner
        (``partner_id``) or to all (``*``). Returns the member's whole consent history."""
        if not statements:
            raise InvalidRequest("give at least one consent", field="consents")
        for partner_id, _, _ in statements:
            if partner_id != ALL_PARTNERS:
                validate_identifier(partner_id, name="partner_id")
        async with self._database.transaction() as connection:
            member = await store.fetch_member(connection, member_id)
            if member is None:
                raise NotFound(f"no member {member_id}")
            if member.erased_at is not None:
                raise MemberErased(f"member {member_id} was erased")
            unknown = await store.unknown_partners(
                connection, [p for p, _, _ in statements if p != ALL_PARTNERS]
            )
            if unknown:
                raise NotFound(f"no partner {', '.join(unknown)}")
            await store.insert_consents(connection, member_id, statements, None, request_id)
            state = await store.fetch_consent_state(connection, member_id, ALL_PARTNERS)
        return state.consents

    async def erase(self, member_id: str) -> bool:
        """GDPR Art. 17: destroy the member's key and personal data; the ledger stays."""
        async with self._database.transaction() as connection:
            member = await store.fetch_member(connection, member_id)
            if member is None:
                raise NotFound(f"no member {member_id}")
            return await store.erase_member(connection, member_id)

    async def access_report(self, member_id: str) -> dict[str, Any]:
        """GDPR Art. 15: what Clearhouse holds of the member and to whom it was disclosed."""
        async with self._database.driver_connection() as connection:
            member = await store.fetch_member(connection, member_id)
            if member is None:
                raise NotFound(f"no member {member_id}")
            consents = await connection.fetch(
                """
                SELECT partner_id, purpose, granted, recorded_at, recorded_by FROM consents
                 WHERE member_id = $1 ORDER BY recorded_at, consent_id
                """,
                member_id,
            )
            links = await connection.fetch(
                """
                SELECT partner_id, linked_at FROM member_links
                 WHERE member_id = $1 ORDER BY linked_at, partner_id
                """,
                member_id,
            )
            disclosures = await store.fetch_disclosures(connection, member_id=member_id)
            entries = await connection.fetchval(
                "SELECT count(*) FROM entries WHERE member_id = $1", member_id
            )
        return {
            "member_id": member_id,
            "enrolled_at": member.created_at,
            "enrolled_by": member.enrolled_by,
            "linked_by": [dict(r) for r in links],
            "erased_at": member.erased_at,
            "balance_points": member.balance_points,
            "personal_fields_held": sorted(member.ciphertexts),
            "entries": int(entries),
            "consents": [dict(r) for r in consents],
            "disclosures": [
                {
                    "disclosed_at": d.disclosed_at,
                    "partner_id": d.partner_id,
                    "purpose": d.purpose,
                    "fields": d.fields,
                    "contract_version": d.contract_version,
                    "legal_basis": d.legal_basis,
                    "request_id": d.request_id,
                }
                for d in disclosures
            ],
        }

    async def disclosure_log(self, start: datetime, end: datetime) -> list[Disclosure]:
        async with self._database.driver_connection() as connection:
            return await store.fetch_disclosures(connection, start=start, end=end)
