"""The coalition's signing keys: one current key signs receipts and statements, another the
webhooks Clearhouse sends; every key that ever signed stays published, with the time it took
over and the time it retired.

The current key of each purpose is the one in its file (``CLEARHOUSE_SIGNING_KEY_FILE``,
``CLEARHOUSE_WEBHOOK_KEY_FILE``). Registering it (at start-up, and before a settlement signs)
makes it current and retires the one before of the same purpose; ``rotate`` writes a new key to
the file and registers it. A key that retired never signs again: a process started with a
retired key's file is refused, and so is one key in both files. Verifiers take the key that a
signature names.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from clearhouse.crypto.ed25519 import CoalitionKey, replace_private_key
from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.records import CoalitionPublicKey, KeyPurpose
from clearhouse.services.database import Database
from clearhouse.storage import access as store

log = structlog.get_logger("clearhouse.keys")


class RetiredKey(InvalidRequest):
    """The signing key file holds a key that has retired."""


class KeyOfAnotherPurpose(InvalidRequest):
    """The key file of one purpose holds the key of the other."""


async def register(
    database: Database, key: CoalitionKey, purpose: KeyPurpose = "statements"
) -> None:
    """Make ``key`` the coalition's current key of ``purpose`` (nothing to do when it is)."""
    async with database.transaction() as connection:
        for row in await store.fetch_coalition_keys(connection):
            if row.key_id != key.key_id:
                continue
            if row.purpose != purpose:
                raise KeyOfAnotherPurpose(
                    f"the {purpose} key file holds {key.key_id}, the {row.purpose} key; "
                    "each purpose needs a key of its own"
                )
            if row.retired_at is not None:
                raise RetiredKey(
                    f"the {purpose} key file holds {key.key_id}, which retired at "
                    f"{row.retired_at.isoformat()}; a retired key never signs again "
                    "(use the current key's file, or rotate)"
                )
        retired = await store.make_coalition_key_current(
            connection, key.key_id, key.public_key, purpose
        )
    if retired is not None:
        log.info("coalition key rotated", purpose=purpose, retired=retired, current=key.key_id)


async def rotate(
    database: Database, key_file: Path, purpose: KeyPurpose = "statements"
) -> tuple[str, CoalitionKey]:
    """Write a new key to ``key_file`` and make it the current key of ``purpose``; returns the
    retired key's id.

    The file is replaced first: should the database step fail, the next start registers the
    new key; the other way round, a start would find the file's key retired.
    """
    current = await current_key(database, purpose)
    key = CoalitionKey.of(replace_private_key(key_file))
    await register(database, key, purpose)
    return ("" if current is None else current.key_id), key


async def published(database: Database) -> list[CoalitionPublicKey]:
    """Every key that ever signed, oldest first."""
    async with database.driver_connection() as connection:
        return await store.fetch_coalition_keys(connection)


async def current_key(
    database: Database, purpose: KeyPurpose = "statements"
) -> CoalitionPublicKey | None:
    return next(
        (k for k in await published(database) if k.retired_at is None and k.purpose == purpose),
        None,
    )
