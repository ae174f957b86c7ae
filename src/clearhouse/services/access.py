"""Who may call: partners' signing keys, the nonce replay store, operator and auditor tokens.

Tokens are looked up on every request, never cached; a partner key's bytes are kept by the
process (``KeyRing``), but whether it may sign is decided by the database in the same statement
that spends the request's nonce, so that a revocation bites on the next request. Validity is
judged by real time, never by the sandbox ledger clock.
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


class KeyRing:
    """Partners' signing keys as a process last read them, so that a request's signature
    verifies before its one round trip to the database.

    A key's id, partner, public key and validity window never change once registered; its
    revocation does, and so the ring is never the last word: ``spend_nonces`` records a
    request's nonces only for keys the database holds valid at that moment, with the same
    partner and public key, so a revocation bites on the next request in every process. A key
    the database refuses is forgotten here. Unknown ids are not remembered, so a key registered
    later is found on its first use.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._keys: dict[str, PartnerKey] = {}

    async def signing_key(self, key_id: str) -> PartnerKey | None:
        """The key named by a signature's ``keyid``, if it exists and is valid as last read."""
        key = self._keys.get(key_id)
        if key is None:
            async with self._database.driver_connection() as connection:
                key = await store.fetch_key(connection, key_id)
            if key is None:
                return None
            self._keys[key_id] = key
        return key if key_is_valid(key, datetime.now(UTC)) else None

    async def spend_nonces(self, signers: Sequence[tuple[PartnerKey, str, datetime]]) -> list[bool]:
        """Record each signer's ``(nonce, expires_at)``; per signer, whether its key is still
        valid. Raises ``NonceReplayed`` when a valid signer's nonce was seen before."""
        async with self._database.driver_connection() as connection:
            outcome = await store.spend_nonces(connection, signers)
        for (key, _, _), (valid, _) in zip(signers, outcome, strict=True):
            if not valid:
                self._keys.pop(key.key_id, None)
        if any(valid and not fresh for valid, fresh in outcome):
            raise NonceReplayed
        return [valid for valid, _ in outcome]


class NonceReplayed(Exception):
    """A nonce of a valid key was recorded before: the whole request is a replay."""


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
