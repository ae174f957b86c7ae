"""Contract versions as stored: immutable rows with the SHA-256 of their file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from clearhouse.domain.contracts import ContractVersion, StoredVersion
from clearhouse.domain.purposes import DataField, LegalBasis, Purpose, PurposeGrant

_COLUMNS = """
    partner_id, version, effective_from, sha256, currency, issue_rate, redemption_rate,
    fee_per_entry, max_points_per_transaction, max_points_per_member_per_day, purposes, source,
    max_hold_seconds, breakage_share_rate
"""


def _grants_json(version: ContractVersion) -> str:
    return msgspec.json.encode(
        {
            purpose.value: {
                "legal_basis": grant.legal_basis.value,
                "fields": sorted(f.value for f in grant.fields),
                "retention_days": grant.retention_days,
            }
            for purpose, grant in version.grants.items()
        }
    ).decode()


def _version(row: asyncpg.Record, legal_name: str) -> ContractVersion:
    purposes = msgspec.json.decode(row["purposes"])
    return ContractVersion(
        partner_id=row["partner_id"],
        version=row["version"],
        effective_from=row["effective_from"],
        legal_name=legal_name,
        currency=row["currency"],
        issue_rate=row["issue_rate"],
        redemption_rate=row["redemption_rate"],
        fee_per_entry=row["fee_per_entry"],
        max_points_per_transaction=row["max_points_per_transaction"],
        max_points_per_member_per_day=row["max_points_per_member_per_day"],
        grants={
            Purpose(name): PurposeGrant(
                LegalBasis(terms["legal_basis"]),
                frozenset(DataField(f) for f in terms["fields"]),
                terms["retention_days"],
            )
            for name, terms in purposes.items()
        },
        sha256=row["sha256"],
        source=row["source"],
        max_hold_seconds=row["max_hold_seconds"],
        breakage_share_rate=row["breakage_share_rate"],
    )


async def insert_versions(
    connection: asyncpg.Connection, versions: Sequence[ContractVersion]
) -> None:
    await connection.executemany(
        f"INSERT INTO contract_versions ({_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14)",
        [
            (
                v.partner_id,
                v.version,
                v.effective_from,
                v.sha256,
                v.currency,
                v.issue_rate,
                v.redemption_rate,
                v.fee_per_entry,
                v.max_points_per_transaction,
                v.max_points_per_member_per_day,
                _grants_json(v),
                v.source,
                v.max_hold_seconds,
                v.breakage_share_rate,
            )
            for v in versions
        ],
    )


async def stored_versions(
    connection: asyncpg.Connection, partner_ids: Sequence[str]
) -> dict[str, list[StoredVersion]]:
    rows = await connection.fetch(
        """
        SELECT partner_id, version, effective_from, sha256 FROM contract_versions
         WHERE partner_id = ANY($1::text[]) ORDER BY partner_id, version
        """,
        list(partner_ids),
    )
    found: dict[str, list[StoredVersion]] = {}
    for row in rows:
        found.setdefault(row["partner_id"], []).append(
            StoredVersion(row["version"], row["effective_from"], row["sha256"])
        )
    return found


async def last_entries(
    connection: asyncpg.Connection, partner_ids: Sequence[str]
) -> dict[str, datetime]:
    """Each partner's latest ``recorded_at`` (one index probe per partner)."""
    rows = await connection.fetch(
        """
        SELECT p.partner_id,
               (SELECT max(e.recorded_at) FROM entries e WHERE e.partner_id = p.partner_id) AS last
          FROM unnest($1::text[]) AS p(partner_id)
        """,
        list(partner_ids),
    )
    return {row["partner_id"]: row["last"] for row in rows if row["last"] is not None}


async def partner_versions(
    connection: asyncpg.Connection, partner_id: str
) -> list[ContractVersion]:
    """All versions of one partner, oldest first."""
    rows = await connection.fetch(
        f"""
        SELECT {_COLUMNS}, p.legal_name FROM contract_versions c
          JOIN partners p USING (partner_id)
         WHERE c.partner_id = $1 ORDER BY c.version
        """,
        partner_id,
    )
    return [_version(row, row["legal_name"]) for row in rows]


async def existing_partners(connection: asyncpg.Connection, partner_ids: Sequence[str]) -> set[str]:
    rows = await connection.fetch(
        "SELECT partner_id FROM partners WHERE partner_id = ANY($1::text[])", list(partner_ids)
    )
    return {row["partner_id"] for row in rows}
