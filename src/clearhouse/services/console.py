"""Console sessions: an operator or auditor token shown once at sign-in becomes a session whose
cookie secret is stored only as its SHA-256; the session ends at sign-out, at its time, or with
its token. And the reads only the console makes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from clearhouse.domain.records import Disclosure, DisclosureFilter, SessionHolder
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.database import Database
from clearhouse.storage import console as store

SESSION_BYTES = 32


@dataclass(frozen=True, slots=True)
class NewSession:
    """What the browser is given: the cookie's secret, once, and the session's end."""

    secret: str
    holder: SessionHolder


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def sign_in(database: Database, token_secret: str, lifetime_s: int) -> NewSession | None:
    """A session for the holder of a live token; None for a token that is not one."""
    holder = await access.token_holder(database, token_secret)
    if holder is None:
        return None
    secret = secrets.token_urlsafe(SESSION_BYTES)
    csrf_token = secrets.token_urlsafe(SESSION_BYTES)
    async with database.driver_connection() as connection:
        await store.insert_session(
            connection, _digest(secret), holder.token_id, csrf_token, lifetime_s
        )
        found = await store.session_holder(connection, _digest(secret))
    assert found is not None  # made just now, by a live token
    return NewSession(secret, found)


async def session_holder(database: Database, secret: str) -> SessionHolder | None:
    """Who a live session stands for; None for a cookie that is not one (any more)."""
    if not secret or len(secret) > 100:
        return None
    async with database.driver_connection() as connection:
        return await store.session_holder(connection, _digest(secret))


async def sign_out(database: Database, secret: str) -> None:
    async with database.driver_connection() as connection:
        await store.end_session(connection, _digest(secret))


def is_operator(holder: SessionHolder) -> bool:
    return holder.role == Role.OPERATOR.value


async def disclosures_page(
    database: Database, search: DisclosureFilter, after: tuple[datetime, int] | None, limit: int
) -> list[tuple[int, Disclosure]]:
    async with database.driver_connection() as connection:
        return await store.disclosures_page(connection, search, after, limit)


async def member_balance_at(database: Database, member_id: str, at: datetime) -> int | None:
    async with database.driver_connection() as connection:
        return await store.member_balance_at(connection, member_id, at)


async def entries_between(database: Database, start: datetime, end: datetime) -> int:
    async with database.driver_connection() as connection:
        return await store.entries_between(connection, start, end)
