"""Who may call: partners' signing keys, the nonce replay store, operator and auditor tokens.

Keys and tokens are looked up on every request, never cached, so that a revocation bites on the
next request. Their validity is judged by real time, never by the sandbox ledger clock.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg

from clearhouse.crypto.ed25519 import key_fingerprint, parse_public_key
from clearhouse.domain.errors import InvalidRequest, NotFound
from clearhouse.domain.ledger import validate_identifier, validate_text
from clearhouse.domain.periods import utc_instant
from clearhouse.domain.records import BearerToken, PartnerKey
from clearhouse.services.database import Database
from clearhouse.storage import access as store

TOKEN_PREFIX = "chk_"  # noqa: S105 (a public prefix that marks tokens, not a secret)
TOKEN_BYTES = 32


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``secret`` is shown once and stored only as its SHA-256."""

    token_id: str
    role: Role
    secret: str
    expires_at: datetime


def key_is_valid(key: PartnerKey, now: datetime) -> bool:
    """A key verifies signatures between not_before and not_after, until it is revoked."""
    if key.revoked_at is not None and key.revoked_at <= now:
        return False
    if key.not_before > now:
        return False
    return key.not_after is None or key.not_after > now


async def add_key(
    database: Database,
    partner_id: str,
    public_key: bytes | str,
    *,
    key_id: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> str:
    """Register a partner's public key (PEM or base64 of the raw 32 bytes); returns its id."""
    raw = parse_public_key(public_key)
    key_id = key_id or f"{partner_id}-{key_fingerprint(raw)}"
    validate_text(key_id, name="key_id", length_max=128)
    not_before = None if not_before is None else utc_instant(not_before, name="not_before")
    not_after = None if not_after is None else utc_instant(not_after, name="not_after")
    if not_before and not_after and not_after <= not_before:
        raise InvalidRequest("not_after must lie after not_before", field="not_after")
    try:
        async with database.driver_connection() as connection:
            await store.insert_key(connection, key_id, partner_id, raw, not_before, not_after)
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no partner {partner_id}") from exc
    except asyncpg.UniqueViolationError as exc:
        raise InvalidRequest(f"key {key_id} exists already", field="key_id") from exc
    return key_id


async def revoke_key(database: Database, key_id: str) -> None:
    """Revoke a key at once: its next signature fails."""
    async with database.driver_connection() as connection:
        if not await store.revoke_key(connection, key_id):
            raise NotFound(f"no active key {key_id}")


async def partner_keys(database: Database, partner_id: str) -> list[PartnerKey]:
    async with database.driver_connection() as connection:
        return await store.fetch_keys(connection, partner_id)


async def all_partner_keys(database: Database) -> list[PartnerKey]:
    """Every partner key there ever was, for auditors checking signatures on old entries."""
    async with database.driver_connection() as connection:
        return await store.fetch_all_keys(connection)


async def signing_key(database: Database, key_id: str) -> PartnerKey | None:
    """The key named by a signature's ``keyid``, if it exists and is valid now."""
    async with database.driver_connection() as connection:
        key = await store.fetch_key(connection, key_id)
    if key is None or not key_is_valid(key, datetime.now(UTC)):
        return None
    return key


async def remember_nonces(database: Database, nonces: Sequence[tuple[str, str, datetime]]) -> bool:
    """Record every ``(key_id, nonce, expires_at)``; True only when none was seen before."""
    async with database.driver_connection() as connection:
        return await store.remember_nonces(connection, nonces)


async def purge_nonces(database: Database) -> int:
    async with database.driver_connection() as connection:
        return await store.purge_nonces(connection)


def token_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_token(
    database: Database, role: Role, expires_at: datetime, label: str = ""
) -> IssuedToken:
    """A random bearer token for ``role``; the secret is returned once and never stored."""
    expires_at = utc_instant(expires_at, name="expires_at")
    if expires_at <= datetime.now(UTC):
        raise InvalidRequest("the token would expire in the past")
    if label:
        validate_text(label, name="label", length_max=200)
    token_id = f"tok_{secrets.token_hex(8)}"
    secret = f"{TOKEN_PREFIX}{role.value}_{secrets.token_urlsafe(TOKEN_BYTES)}"
    async with database.driver_connection() as connection:
        await store.insert_token(
            connection, token_id, role.value, token_digest(secret), label, expires_at
        )
    return IssuedToken(token_id, role, secret, expires_at)


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Who shows a live token: its id (what the action log names) and its role."""

    token_id: str
    role: Role


async def token_holder(database: Database, secret: str) -> TokenHolder | None:
    """The holder of a live token (not expired, not revoked); None otherwise."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    async with database.driver_connection() as connection:
        found = await store.token_role(connection, token_digest(secret))
    return None if found is None else TokenHolder(found[0], Role(found[1]))


async def revoke_token(database: Database, token_id: str) -> None:
    async with database.driver_connection() as connection:
        if not await store.revoke_token(connection, token_id):
            raise NotFound(f"no active token {token_id}")


async def list_tokens(database: Database) -> list[BearerToken]:
    async with database.driver_connection() as connection:
        return await store.fetch_tokens(connection)


async def list_partners(database: Database) -> list[tuple[str, str, datetime, int]]:
    async with database.driver_connection() as connection:
        return await store.fetch_partners(connection)


def check_partner_id(partner_id: str) -> str:
    return validate_identifier(partner_id, name="partner_id")
