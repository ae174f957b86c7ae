"""Partner keys, the nonce replay store and bearer tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from clearhouse.domain.records import BearerToken, CoalitionPublicKey, KeyPurpose, PartnerKey


async def insert_key(
    connection: asyncpg.Connection,
    key_id: str,
    partner_id: str,
    public_key: bytes,
    not_before: datetime | None,
    not_after: datetime | None,
) -> None:
    await connection.execute(
        """
        INSERT INTO partner_keys (key_id, partner_id, public_key, not_before, not_after)
        VALUES ($1, $2, $3, coalesce($4, clock_timestamp()), $5)
        """,
        key_id,
        partner_id,
        public_key,
        not_before,
        not_after,
    )


async def revoke_key(connection: asyncpg.Connection, key_id: str) -> bool:
    status = await connection.execute(
        """
        UPDATE partner_keys SET revoked_at = clock_timestamp()
         WHERE key_id = $1 AND revoked_at IS NULL
        """,
        key_id,
    )
    return bool(status.endswith(" 1"))


async def fetch_key(connection: asyncpg.Connection, key_id: str) -> PartnerKey | None:
    row = await connection.fetchrow(
        """
        SELECT key_id, partner_id, public_key, not_before, not_after, revoked_at
          FROM partner_keys WHERE key_id = $1
        """,
        key_id,
    )
    return None if row is None else PartnerKey(**dict(row))


async def fetch_keys(connection: asyncpg.Connection, partner_id: str) -> list[PartnerKey]:
    rows = await connection.fetch(
        """
        SELECT key_id, partner_id, public_key, not_before, not_after, revoked_at
          FROM partner_keys WHERE partner_id = $1 ORDER BY created_at, key_id
        """,
        partner_id,
    )
    return [PartnerKey(**dict(row)) for row in rows]


async def fetch_all_keys(connection: asyncpg.Connection) -> list[PartnerKey]:
    """Every partner key there ever was: current, expired and revoked."""
    rows = await connection.fetch(
        """
        SELECT key_id, partner_id, public_key, not_before, not_after, revoked_at
          FROM partner_keys ORDER BY partner_id, created_at, key_id
        """
    )
    return [PartnerKey(**dict(row)) for row in rows]


async def remember_nonces(
    connection: asyncpg.Connection, nonces: Sequence[tuple[str, str, datetime]]
) -> bool:
    """Record every ``(key_id, nonce)`` in one statement; False when any was seen before.

    All are recorded even when one is a replay, so that no part of a replayed request can be
    sent again on its own. A pair named twice in ``nonces`` is a replay of itself.
    """
    distinct = {(key_id, nonce): expires_at for key_id, nonce, expires_at in nonces}
    inserted = await connection.fetchval(
        """
        WITH fresh AS (
            INSERT INTO signature_nonces (key_id, nonce, expires_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
            ON CONFLICT DO NOTHING RETURNING 1
        )
        SELECT count(*) FROM fresh
        """,
        [key_id for key_id, _ in distinct],
        [nonce for _, nonce in distinct],
        list(distinct.values()),
    )
    return len(distinct) == len(nonces) and inserted == len(nonces)


async def purge_nonces(connection: asyncpg.Connection) -> int:
    status = await connection.execute(
        "DELETE FROM signature_nonces WHERE expires_at < clock_timestamp()"
    )
    return int(status.split()[-1])


async def insert_token(
    connection: asyncpg.Connection,
    token_id: str,
    role: str,
    token_sha256: bytes,
    label: str,
    expires_at: datetime,
) -> None:
    await connection.execute(
        """
        INSERT INTO api_tokens (token_id, role, token_sha256, label, expires_at)
        VALUES ($1, $2, $3, $4, $5)
        """,
        token_id,
        role,
        token_sha256,
        label,
        expires_at,
    )


async def token_role(connection: asyncpg.Connection, token_sha256: bytes) -> tuple[str, str] | None:
    """``(token_id, role)`` of a token that is neither expired nor revoked."""
    row = await connection.fetchrow(
        """
        SELECT token_id, role FROM api_tokens
         WHERE token_sha256 = $1 AND revoked_at IS NULL AND expires_at > clock_timestamp()
        """,
        token_sha256,
    )
    return None if row is None else (row["token_id"], row["role"])


async def revoke_token(connection: asyncpg.Connection, token_id: str) -> bool:
    status = await connection.execute(
        """
        UPDATE api_tokens SET revoked_at = clock_timestamp()
         WHERE token_id = $1 AND revoked_at IS NULL
        """,
        token_id,
    )
    return bool(status.endswith(" 1"))


async def fetch_tokens(connection: asyncpg.Connection) -> list[BearerToken]:
    rows = await connection.fetch(
        """
        SELECT token_id, role, label, created_at, expires_at, revoked_at
          FROM api_tokens ORDER BY created_at, token_id
        """
    )
    return [BearerToken(**dict(row)) for row in rows]


async def fetch_partners(connection: asyncpg.Connection) -> list[tuple[str, str, datetime, int]]:
    rows = await connection.fetch(
        """
        SELECT p.partner_id, p.legal_name, p.created_at,
               (SELECT count(*) FROM partner_keys k
                 WHERE k.partner_id = p.partner_id AND k.revoked_at IS NULL
                   AND (k.not_after IS NULL OR k.not_after > clock_timestamp())) AS active_keys
          FROM partners p ORDER BY p.partner_id
        """
    )
    return [
        (r["partner_id"], r["legal_name"], r["created_at"], int(r["active_keys"])) for r in rows
    ]


async def fetch_coalition_keys(connection: asyncpg.Connection) -> list[CoalitionPublicKey]:
    rows = await connection.fetch(
        """
        SELECT key_id, public_key, not_before, retired_at, purpose FROM coalition_keys
         ORDER BY not_before, key_id
        """
    )
    return [
        CoalitionPublicKey(
            r["key_id"], bytes(r["public_key"]), r["not_before"], r["retired_at"], r["purpose"]
        )
        for r in rows
    ]


async def make_coalition_key_current(
    connection: asyncpg.Connection,
    key_id: str,
    public_key: bytes,
    purpose: KeyPurpose = "statements",
) -> str | None:
    """Make ``key_id`` the current coalition key of ``purpose``, retiring the one before (in the
    caller's transaction); returns the retired key's id. A key that retired never comes back,
    nor serves two purposes: the caller checks that first."""
    await connection.execute("LOCK TABLE coalition_keys IN SHARE ROW EXCLUSIVE MODE")
    current = await connection.fetchval(
        "SELECT key_id FROM coalition_keys WHERE retired_at IS NULL AND purpose = $1", purpose
    )
    if current == key_id:
        return None
    if current is not None:
        await connection.execute(
            "UPDATE coalition_keys SET retired_at = clock_timestamp() WHERE key_id = $1", current
        )
    await connection.execute(
        "INSERT INTO coalition_keys (key_id, public_key, purpose) VALUES ($1, $2, $3)",
        key_id,
        public_key,
        purpose,
    )
    return str(current) if current is not None else None
