"""Members on a real PostgreSQL: encryption, disclosure log, consents, erasure, retention."""

from __future__ import annotations

import subprocess
import uuid
import warnings
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from clearhouse.config import SANDBOX_MASTER_KEY
from clearhouse.crypto import aead
from clearhouse.domain.errors import (
    ConsentRequired,
    Forbidden,
    MemberErased,
    NotFound,
    PurposeNotPermitted,
)
from clearhouse.domain.purposes import ALL_PARTNERS, Purpose
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.members import ConsentStatement, Members
from clearhouse.services.posting import PointsRequest
from clearhouse.services.retention import run_retention
from clearhouse.storage import ledger as ledger_store
from tests.services.builders import a_ledger, a_partner, points_request, unique

ANNA = {
    "given_name": "Annabella",
    "family_name": "Quistorp-Zwiebelmann",
    "email": "annabella.qz@example.org",
    "birth_date": "1987-03-14",
    "postal_code": "10999",
}


def members_of(database: Database) -> Members:
    return Members(database, ContractBook(database), SANDBOX_MASTER_KEY)


async def enrol_anna(database: Database, partner_id: str, **consents: bool) -> str:
    enrolment = await members_of(database).enrol(
        partner_id,
        member_id=unique("m"),
        personal=ANNA,
        consents=[ConsentStatement(Purpose(p), g) for p, g in consents.items()],
        idempotency_key=unique("enrol"),
    )
    return enrolment.member_id


async def test_personal_data_is_stored_only_as_ciphertext(database: Database) -> None:
    partner_id = await a_partner(database)
    member_id = await enrol_anna(database, partner_id)
    async with database.driver_connection() as connection:
        rows = await connection.fetch(
            "SELECT field, ciphertext FROM member_personal_data WHERE member_id = $1", member_id
        )
    assert {r["field"] for r in rows} == {f"member.{k}" for k in ANNA}
    for row in rows:
        assert ANNA[row["field"].removeprefix("member.")].encode() not in bytes(row["ciphertext"])


async def test_a_read_gives_only_the_granted_fields_and_is_logged(database: Database) -> None:
    partner_id = await a_partner(database)
    member_id = await enrol_anna(database, partner_id)
    members = members_of(database)
    view = await members.read(partner_id, member_id, Purpose.CUSTOMER_SERVICE, "req-1")
    assert view.fields["given_name"] == ANNA["given_name"]
    assert view.fields["family_name"] == ANNA["family_name"]
    assert "email" not in view.fields
    assert "birth_date" not in view.fields
    report = await members.access_report(member_id)
    [logged] = report["disclosures"]
    assert logged["partner_id"] == partner_id
    assert logged["purpose"] == "customer_service"
    assert logged["request_id"] == "req-1"
    assert set(logged["fields"]) == {
        "member.given_name",
        "member.family_name",
        "member.balance",
        "transactions.own",
    }


async def test_consent_withdrawn_between_two_reads_stops_the_second(database: Database) -> None:
    partner_id = await a_partner(database)
    member_id = await enrol_anna(database, partner_id, marketing=True)
    members = members_of(database)
    first = await members.read(partner_id, member_id, Purpose.MARKETING, "r1")
    assert first.fields == {"email": ANNA["email"], "given_name": ANNA["given_name"]}
    await members.record_consents(
        partner_id, member_id, [ConsentStatement(Purpose.MARKETING, False)]
    )
    with pytest.raises(ConsentRequired):
        await members.read(partner_id, member_id, Purpose.MARKETING, "r2")
    with pytest.raises(PurposeNotPermitted):
        await members.read(partner_id, member_id, Purpose.ANALYTICS, "r3")


async def test_a_consent_to_all_partners_from_a_partner_is_refused_and_writes_nothing(
    database: Database,
) -> None:
    partner_id = await a_partner(database)
    member_id = f"m-{uuid.uuid4().hex[:12]}"
    with pytest.raises(Forbidden):
        await members_of(database).enrol(
            partner_id,
            member_id=member_id,
            personal=ANNA,
            consents=[ConsentStatement(Purpose.MARKETING, True, all_partners=True)],
            idempotency_key=f"e-{member_id}",
        )
    with pytest.raises(NotFound):
        await members_of(database).access_report(member_id)


async def test_a_consent_to_all_partners_by_the_operator_covers_a_related_partner(
    database: Database,
) -> None:
    enrolling, other = await a_partner(database), await a_partner(database)
    members = members_of(database)
    member_id = (
        await members.enrol(
            enrolling, member_id=None, personal=ANNA, consents=[], idempotency_key="e"
        )
    ).member_id
    await members.record_consents_as_operator(member_id, [(ALL_PARTNERS, Purpose.MARKETING, True)])
    await a_ledger(database).issue(
        other, points_request(member_id, 5), idempotency_key=f"i-{member_id}"
    )
    view = await members.read(other, member_id, Purpose.MARKETING, "r")
    assert view.fields["email"] == ANNA["email"]


async def test_enrolment_replays_and_refuses_a_different_request(database: Database) -> None:
    partner_id = await a_partner(database)
    members = members_of(database)
    first = await members.enrol(
        partner_id, member_id=None, personal=ANNA, consents=[], idempotency_key="same"
    )
    again = await members.enrol(
        partner_id, member_id=None, personal=ANNA, consents=[], idempotency_key="same"
    )
    assert again.replayed
    assert again.member_id == first.member_id


def test_a_ciphertext_moved_to_another_member_or_field_does_not_decrypt() -> None:
    key = aead.new_data_key()
    sealed = aead.encrypt_field(key, "m-1", "member.email", "a@example.org")
    assert aead.decrypt_field(key, "m-1", "member.email", sealed) == "a@example.org"
    with pytest.raises(aead.DecryptionFailed):
        aead.decrypt_field(key, "m-2", "member.email", sealed)
    with pytest.raises(aead.DecryptionFailed):
        aead.decrypt_field(key, "m-1", "member.given_name", sealed)
    wrapped = aead.wrap_key(SANDBOX_MASTER_KEY, "m-1", key)
    with pytest.raises(aead.DecryptionFailed):
        aead.unwrap_key(SANDBOX_MASTER_KEY, "m-2", wrapped)


async def test_swapping_ciphertexts_between_rows_in_the_database_fails_to_decrypt(
    database: Database, dsn: str
) -> None:
    partner_id = await a_partner(database)
    first = await enrol_anna(database, partner_id)
    second = await enrol_anna(database, partner_id)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            """
            UPDATE member_personal_data t SET ciphertext = s.ciphertext
              FROM member_personal_data s
             WHERE t.member_id = $1 AND s.member_id = $2 AND t.field = s.field
            """,
            first,
            second,
        )
    finally:
        await connection.close()
    with pytest.raises(aead.DecryptionFailed):
        await members_of(database).read(partner_id, first, Purpose.CUSTOMER_SERVICE, "r")


def _pg_dump(database_url: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    binary = Path(pgserver.__file__).parent / "pginstall/bin/pg_dump"
    url = make_url(database_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    command = [
        str(binary),
        "-h",
        str(host),
        "-U",
        url.username or "postgres",
        "-d",
        str(url.database),
    ]
    if url.port:
        command += ["-p", str(url.port)]
    return subprocess.run(command, check=True, capture_output=True, timeout=120).stdout


async def test_after_erasure_no_dump_holds_the_personal_data_and_the_ledger_stays(
    database: Database, database_url: str
) -> None:
    partner_id = await a_partner(database)
    tag = unique("x").removeprefix("x-")  # values no other test enrols
    personal = {
        "given_name": f"Erika{tag}",
        "family_name": f"Vergessen{tag}",
        "email": f"erika.{tag}@example.org",
        "postal_code": f"E{tag[:8]}",
    }
    enrolment = await members_of(database).enrol(
        partner_id, member_id=None, personal=personal, consents=[], idempotency_key=tag
    )
    member_id = enrolment.member_id
    ledger = a_ledger(database)
    await ledger.issue(partner_id, points_request(member_id, 70), idempotency_key="i")
    members = members_of(database)
    assert await members.erase(member_id) is True
    assert await members.erase(member_id) is False
    with pytest.raises(MemberErased):
        await members.read(partner_id, member_id, Purpose.CUSTOMER_SERVICE, "r")
    with pytest.raises(MemberErased):
        await ledger.issue(partner_id, points_request(member_id, 1), idempotency_key="j")
    async with database.driver_connection() as connection:
        assert await ledger_store.member_balance(connection, member_id) == 70
        assert await ledger_store.invariant_violations(connection) == []
    dump = _pg_dump(database_url)
    assert member_id.encode() in dump  # the pseudonymous id stays with the ledger
    for value in personal.values():
        assert value.encode() not in dump, value


async def test_retention_removes_metadata_past_the_contracts_days(
    database: Database, dsn: str
) -> None:
    partner_id = await a_partner(database)  # marketing: 30 days; accrual: kept
    member_id = await enrol_anna(database, partner_id)
    ledger = a_ledger(database)
    request = points_request(member_id, 5)
    with_metadata = PointsRequest(member_id, 5, request.occurred_at, "r", '{"basket": 1}')
    await ledger.issue(partner_id, with_metadata, idempotency_key="i")
    second = await ledger.issue(partner_id, points_request(member_id, 1), idempotency_key="j")
    connection = await asyncpg.connect(dsn)
    try:
        # Metadata sent for marketing (30 days' retention), recorded 31 days ago.
        await connection.execute(
            """
            INSERT INTO entry_metadata (entry_id, purpose, metadata, recorded_at)
            VALUES ($1, 'marketing', '{"a": 1}', ledger_now() - interval '31 days')
            """,
            second.entry.entry_id,
        )
        removed = await run_retention(database)
        mine = [r for r in removed if r.partner_id == partner_id]
        assert [(r.purpose, r.retention_days, r.removed) for r in mine] == [("marketing", 30, 1)]
        left = await connection.fetch(
            """
            SELECT m.purpose FROM entry_metadata m JOIN entries e USING (entry_id)
             WHERE e.partner_id = $1
            """,
            partner_id,
        )
        assert [r["purpose"] for r in left] == ["accrual"]
    finally:
        await connection.close()
