"""The operator action log: every close, settle, key revocation, webhook replay and erasure,
whether asked through the API or the console, with who asked, when, on what, and how it ended.

The action runs first and its row is written after it, with ``done`` or the problem's code: a
refusal is logged as well as a success. The table is append-only (a trigger refuses changes).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from clearhouse.domain.errors import ClearhouseError
from clearhouse.domain.records import OperatorAction
from clearhouse.services.database import Database
from clearhouse.storage import console as store

T = TypeVar("T")

DONE = "done"
FAILED = "internal_error"
"""The outcome of an action that ended in something other than a problem of ours."""


class Action(StrEnum):
    CLOSE = "period.close"
    SETTLE = "period.settle"
    REVOKE_KEY = "key.revoke"
    REPLAY = "delivery.replay"
    ERASE = "member.erase"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: the token (an operator's), by which channel, in which request."""

    token_id: str
    channel: str
    request_id: str


async def logged(
    database: Database, actor: Actor, action: Action, subject: str, work: Awaitable[T]
) -> T:
    """Run ``work`` (the action) and log it with its outcome; its result, or its exception."""
    try:
        result = await work
    except ClearhouseError as exc:
        await _record(database, actor, action, subject, exc.code)
        raise
    except Exception:
        await _record(database, actor, action, subject, FAILED)
        raise
    await _record(database, actor, action, subject, DONE)
    return result


async def _record(
    database: Database, actor: Actor, action: Action, subject: str, outcome: str
) -> None:
    async with database.driver_connection() as connection:
        await store.insert_action(
            connection,
            token_id=actor.token_id,
            channel=actor.channel,
            action=action.value,
            subject=subject[:200],
            outcome=outcome,
            request_id=actor.request_id,
        )


async def actions(database: Database, before: int | None, limit: int) -> list[OperatorAction]:
    """The log, newest first."""
    async with database.driver_connection() as connection:
        return await store.actions_page(connection, before, limit)
