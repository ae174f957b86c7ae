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


async def spend_nonces(
    connection: asyncpg.Connection,
    signers: Sequence[tuple[PartnerKey, str, datetime]],
) -> list[tuple[bool, bool]]:
    """Record the ``(key, nonce, expires_at)`` of each signer whose key is valid now; one
    statement, one round trip. Per signer, in order: ``(valid, fresh)``.

    ``valid``: the key is in ``partner_keys`` with the same partner and public key, and lies
    within its validity at the database's clock, not revoked; so a key revoked since the caller
    read it is refused here, whatever the caller kept. ``fresh``: its nonce was not seen before.
    The nonces of all valid keys are recorded even when one is a replay, so that no part of a
    replayed request can be sent again on its own. A pair named twice is a replay of itself:
    its second is not fresh.
    """
    rows = await connection.fetch(
        """
        WITH wanted AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[],
                                 $5::timestamptz[])
                WITH ORDINALITY AS w (key_id, partner_id, public_key, nonce, expires_at, position)
        ), valid AS (
            SELECT w.position, w.key_id, w.nonce, w.expires_at
              FROM wanted w
              JOIN partner_keys k ON k.key_id = w.key_id AND k.partner_id = w.partner_id
                                 AND k.public_key = w.public_key
             WHERE k.not_before <= clock_timestamp()
               AND (k.not_after IS NULL OR k.not_after > clock_timestamp())
               AND (k.revoked_at IS NULL OR k.revoked_at > clock_timestamp())
        ), fresh AS (
            INSERT INTO signature_nonces (key_id, nonce, expires_at)
            SELECT DISTINCT ON (key_id, nonce) key_id, nonce, expires_at
              FROM valid ORDER BY key_id, nonce, position
            ON CONFLICT DO NOTHING
            RETURNING key_id, nonce
        )
        SELECT w.position, v.position IS NOT NULL AS valid,
               EXISTS (SELECT 1 FROM fresh f WHERE (f.key_id, f.nonce) = (w.key_id, w.nonce))
               AND NOT EXISTS (
                   SELECT 1 FROM wanted o
                    WHERE (o.key_id, o.nonce) = (w.key_id, w.nonce) AND o.position < w.position
               ) AS fresh
          FROM wanted w LEFT JOIN valid v USING (position)
         ORDER BY w.position
        """,
        [key.key_id for key, _, _ in signers],
        [key.partner_id for key, _, _ in signers],
        [key.public_key for key, _, _ in signers],
        [nonce for _, nonce, _ in signers],
        [expires_at for _, _, expires_at in signers],
    )
    return [(row["valid"], row["fresh"]) for row in rows]


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
