"""Members' personal data (ciphertexts only), consents, and the disclosure log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from clearhouse.domain.purposes import ConsentRecord, Purpose
from clearhouse.domain.records import Disclosure


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_id: str
    enrolled_by: str | None
    created_at: datetime
    erased_at: datetime | None
    balance_points: int
    wrapped_key: bytes | None
    ciphertexts: Mapping[str, bytes]


async def insert_member(
    connection: asyncpg.Connection,
    member_id: str,
    enrolled_by: str | None,
    wrapped_key: bytes,
    ciphertexts: Mapping[str, bytes],
) -> bool:
    """A member with a zero balance, an account, a data key and encrypted fields.

    False, writing nothing, when the member exists already (waiting for a concurrent
    enrolment of the same id to commit first).
    """
    created = await connection.fetchval(
        """
        WITH m AS (
            INSERT INTO members (member_id, enrolled_by) VALUES ($1, $2)
            ON CONFLICT (member_id) DO NOTHING RETURNING member_id
        ), b AS (
            INSERT INTO member_balances (member_id) SELECT member_id FROM m
        ), a AS (
            INSERT INTO accounts (account, kind, member_id)
            SELECT 'member:' || member_id, 'member', member_id FROM m
        )
        INSERT INTO member_keys (member_id, wrapped_key) SELECT member_id, $3 FROM m
        RETURNING true
        """,
        member_id,
        enrolled_by,
        wrapped_key,
    )
    if created and ciphertexts:
        await connection.executemany(
            "INSERT INTO member_personal_data (member_id, field, ciphertext) VALUES ($1, $2, $3)",
            [(member_id, field, sealed) for field, sealed in ciphertexts.items()],
        )
    return bool(created)


async def link_member(
    connection: asyncpg.Connection, member_id: str, partner_id: str, request_id: str | None
) -> None:
    """Record that ``partner_id`` enrolled a card that exists already (once per partner)."""
    await connection.execute(
        """
        INSERT INTO member_links (member_id, partner_id, request_id) VALUES ($1, $2, $3)
        ON CONFLICT DO NOTHING
        """,
        member_id,
        partner_id,
        request_id,
    )


async def insert_consents(
    connection: asyncpg.Connection,
    member_id: str,
    statements: Sequence[tuple[str, Purpose, bool]],
    recorded_by: str | None,
    request_id: str | None,
) -> None:
    await connection.executemany(
        """
        INSERT INTO consents (member_id, partner_id, purpose, granted, recorded_by, request_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        [
            (member_id, partner_id, purpose.value, granted, recorded_by, request_id)
            for partner_id, purpose, granted in statements
        ],
    )


async def unknown_partners(connection: asyncpg.Connection, partner_ids: Sequence[str]) -> list[str]:
    """Those of ``partner_ids`` that name no partner."""
    rows = await connection.fetch(
        """
        SELECT DISTINCT given.partner_id FROM unnest($1::text[]) AS given (partner_id)
         WHERE NOT EXISTS (SELECT 1 FROM partners p WHERE p.partner_id = given.partner_id)
         ORDER BY 1
        """,
        list(partner_ids),
    )
    return [row["partner_id"] for row in rows]


async def fetch_member(connection: asyncpg.Connection, member_id: str) -> MemberRow | None:
    row = await connection.fetchrow(
        """
        SELECT m.member_id, m.enrolled_by, m.created_at, m.erased_at, b.balance_points,
               k.wrapped_key,
               (SELECT coalesce(array_agg(ROW(p.field, p.ciphertext)), '{}')
                  FROM member_personal_data p WHERE p.member_id = m.member_id) AS fields
          FROM members m
          JOIN member_balances b USING (member_id)
          LEFT JOIN member_keys k USING (member_id)
         WHERE m.member_id = $1
        """,
        member_id,
    )
    if row is None:
        return None
    return MemberRow(
        member_id=row["member_id"],
        enrolled_by=row["enrolled_by"],
        created_at=row["created_at"],
        erased_at=row["erased_at"],
        balance_points=int(row["balance_points"]),
        wrapped_key=None if row["wrapped_key"] is None else bytes(row["wrapped_key"]),
        ciphertexts={field: bytes(sealed) for field, sealed in row["fields"]},
    )


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A member's consent history, read together with the ledger clock, the partner's
    contract version in force at that clock and whether the member is related to the partner,
    so that the decision rests on one moment."""

    consents: list[ConsentRecord]
    now: datetime
    version_in_force: int | None
    related: bool
    """The member exists and was enrolled through the partner, has an entry with it, or gave
    it a consent (docs/data-protection.md, "Who sees a member")."""


async def fetch_consent_state(
    connection: asyncpg.Connection, member_id: str, partner_id: str
) -> ConsentState:
    row = await connection.fetchrow(
        """
        WITH clock AS (SELECT ledger_now() AS now)
        SELECT clock.now,
               (SELECT c.version FROM contract_versions c
                 WHERE c.partner_id = $2 AND c.effective_from <= clock.now
                 ORDER BY c.effective_from DESC LIMIT 1) AS version_in_force,
               (SELECT coalesce(array_agg(ROW(s.partner_id, s.purpose, s.granted, s.recorded_at)
                                          ORDER BY s.recorded_at, s.consent_id), '{}')
                  FROM consents s WHERE s.member_id = $1) AS consents,
               (EXISTS (SELECT 1 FROM members m WHERE m.member_id = $1 AND m.enrolled_by = $2)
                OR EXISTS (SELECT 1 FROM member_links l
                            WHERE l.member_id = $1 AND l.partner_id = $2)
                OR EXISTS (SELECT 1 FROM entries e WHERE e.member_id = $1 AND e.partner_id = $2)
                OR EXISTS (SELECT 1 FROM consents g
                            WHERE g.member_id = $1 AND g.partner_id = $2 AND g.granted)
               ) AS related
          FROM clock
        """,
        member_id,
        partner_id,
    )
    assert row is not None
    return ConsentState(
        consents=[
            ConsentRecord(partner, Purpose(purpose), granted, recorded_at)
            for partner, purpose, granted, recorded_at in row["consents"]
        ],
        now=row["now"],
        version_in_force=row["version_in_force"],
        related=bool(row["related"]),
    )


async def insert_disclosure(
    connection: asyncpg.Connection,
    partner_id: str,
    member_id: str,
    purpose: str,
    fields: Sequence[str],
    contract_version: int,
    legal_basis: str,
    request_id: str,
) -> datetime:
    value = await connection.fetchval(
        """
        INSERT INTO disclosures
            (partner_id, member_id, purpose, fields, contract_version, legal_basis, request_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING disclosed_at
        """,
        partner_id,
        member_id,
        purpose,
        list(fields),
        contract_version,
        legal_basis,
        request_id,
    )
    assert isinstance(value, datetime)
    return value


async def fetch_disclosures(
    connection: asyncpg.Connection,
    *,
    member_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Disclosure]:
    rows = await connection.fetch(
        """
        SELECT disclosed_at, partner_id, member_id, purpose, fields, contract_version,
               legal_basis, request_id
          FROM disclosures
         WHERE ($1::text IS NULL OR member_id = $1)
           AND ($2::timestamptz IS NULL OR disclosed_at >= $2)
           AND ($3::timestamptz IS NULL OR disclosed_at < $3)
         ORDER BY disclosed_at, disclosure_id
        """,
        member_id,
        start,
        end,
    )
    return [Disclosure(**dict(row)) for row in rows]


async def erase_member(connection: asyncpg.Connection, member_id: str) -> bool:
    """Destroy the member's data key and ciphertexts; mark the member erased."""
    erased = await connection.fetchval(
        """
        UPDATE members SET erased_at = ledger_now()
         WHERE member_id = $1 AND erased_at IS NULL RETURNING true
        """,
        member_id,
    )
    await connection.execute("DELETE FROM member_personal_data WHERE member_id = $1", member_id)
    await connection.execute("DELETE FROM member_keys WHERE member_id = $1", member_id)
    # What a partner sent with an open hold may be personal: it goes too (an ended hold has
    # none left).
    await connection.execute(
        "UPDATE holds SET metadata = NULL WHERE member_id = $1 AND metadata IS NOT NULL",
        member_id,
    )
    return bool(erased)


async def own_entries_of_member(
    connection: asyncpg.Connection, partner_id: str, member_id: str, limit: int
) -> list[asyncpg.Record]:
    return list(
        await connection.fetch(
            """
            SELECT entry_id, kind, points, recorded_at, reference, reversal_of
              FROM entries WHERE partner_id = $1 AND member_id = $2
             ORDER BY recorded_at DESC, entry_id DESC LIMIT $3
            """,
            partner_id,
            member_id,
            limit,
        )
    )


async def current_consents(
    connection: asyncpg.Connection, member_id: str
) -> list[tuple[str, str, bool, datetime]]:
    """The member's latest decision per partner and purpose: (partner, purpose, granted, at)."""
    rows = await connection.fetch(
        """
        SELECT DISTINCT ON (partner_id, purpose) partner_id, purpose, granted, recorded_at
          FROM consents WHERE member_id = $1
         ORDER BY partner_id, purpose, recorded_at DESC, consent_id DESC
        """,
        member_id,
    )
    return [(r["partner_id"], r["purpose"], r["granted"], r["recorded_at"]) for r in rows]
