"""The console's tables (sessions, the operator action log) and the reads only it makes: the
disclosure log searched by keyset, and a member's balance as of an instant."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from clearhouse.domain.ledger import member_account
from clearhouse.domain.money import POINTS_ASSET
from clearhouse.domain.records import (
    Disclosure,
    DisclosureFilter,
    OperatorAction,
    SessionHolder,
)


async def insert_session(
    connection: asyncpg.Connection,
    session_sha256: bytes,
    token_id: str,
    csrf_token: str,
    lifetime_s: int,
) -> datetime:
    """A session for ``token_id`` ending after ``lifetime_s`` seconds or with its token,
    whichever comes first; its end."""
    value = await connection.fetchval(
        """
        INSERT INTO console_sessions (session_sha256, token_id, csrf_token, expires_at)
        SELECT $1, t.token_id, $3,
               least(t.expires_at, clock_timestamp() + make_interval(secs => $4))
          FROM api_tokens t WHERE t.token_id = $2
        RETURNING expires_at
        """,
        session_sha256,
        token_id,
        csrf_token,
        lifetime_s,
    )
    assert isinstance(value, datetime)
    return value


async def session_holder(
    connection: asyncpg.Connection, session_sha256: bytes
) -> SessionHolder | None:
    """The holder of a session that has not ended, whose token is still live."""
    row = await connection.fetchrow(
        """
        SELECT t.token_id, t.role, t.label, s.csrf_token, s.expires_at
          FROM console_sessions s JOIN api_tokens t USING (token_id)
         WHERE s.session_sha256 = $1
           AND s.ended_at IS NULL AND s.expires_at > clock_timestamp()
           AND t.revoked_at IS NULL AND t.expires_at > clock_timestamp()
        """,
        session_sha256,
    )
    return None if row is None else SessionHolder(**dict(row))


async def end_session(connection: asyncpg.Connection, session_sha256: bytes) -> None:
    await connection.execute(
        """
        UPDATE console_sessions SET ended_at = clock_timestamp()
         WHERE session_sha256 = $1 AND ended_at IS NULL
        """,
        session_sha256,
    )


async def insert_action(
    connection: asyncpg.Connection,
    *,
    token_id: str,
    channel: str,
    action: str,
    subject: str,
    outcome: str,
    request_id: str,
) -> None:
    await connection.execute(
        """
        INSERT INTO operator_actions (token_id, channel, action, subject, outcome, request_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        token_id,
        channel,
        action,
        subject,
        outcome,
        request_id,
    )


async def actions_page(
    connection: asyncpg.Connection, before: int | None, limit: int
) -> list[OperatorAction]:
    """The newest actions first, before the action id ``before``."""
    rows = await connection.fetch(
        """
        SELECT a.action_id, a.acted_at, a.token_id, t.label, a.channel, a.action, a.subject,
               a.outcome, a.request_id
          FROM operator_actions a JOIN api_tokens t USING (token_id)
         WHERE ($1::bigint IS NULL OR a.action_id < $1)
         ORDER BY a.action_id DESC
         LIMIT $2
        """,
        before,
        limit,
    )
    return [OperatorAction(**dict(row)) for row in rows]


async def disclosures_page(
    connection: asyncpg.Connection,
    search: DisclosureFilter,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[tuple[int, Disclosure]]:
    """The disclosures ``search`` finds in log order, after the keyset ``after``
    (``disclosed_at``, ``disclosure_id``); each with its id for the next page's keyset."""
    rows = await connection.fetch(
        """
        SELECT disclosure_id, disclosed_at, partner_id, member_id, purpose, fields,
               contract_version, legal_basis, request_id
          FROM disclosures
         WHERE disclosed_at >= $1 AND disclosed_at < $2
           AND ($3::text IS NULL OR partner_id = $3)
           AND ($4::text IS NULL OR member_id = $4)
           AND ($5::text IS NULL OR purpose = $5)
           AND ($6::text IS NULL OR request_id = $6)
           AND ($7::timestamptz IS NULL OR (disclosed_at, disclosure_id) > ($7, $8::bigint))
         ORDER BY disclosed_at, disclosure_id
         LIMIT $9
        """,
        search.start,
        search.end,
        search.partner_id,
        search.member_id,
        search.purpose,
        search.request_id,
        None if after is None else after[0],
        None if after is None else after[1],
        limit,
    )
    return [
        (row["disclosure_id"], Disclosure(**{k: v for k, v in row.items() if k != "disclosure_id"}))
        for row in rows
    ]


async def member_balance_at(
    connection: asyncpg.Connection, member_id: str, at: datetime
) -> int | None:
    """The member's points as of ``at`` (every posting on its account recorded by then);
    None for an unknown member."""
    row = await connection.fetchrow(
        """
        SELECT (SELECT coalesce(sum(p.amount), 0)
                  FROM postings p JOIN entries e USING (entry_id)
                 WHERE p.account = $2 AND p.asset = $3 AND e.recorded_at <= $4) AS points
          FROM members m WHERE m.member_id = $1
        """,
        member_id,
        member_account(member_id),
        POINTS_ASSET,
        at,
    )
    return None if row is None else int(row["points"])


async def entries_between(connection: asyncpg.Connection, start: datetime, end: datetime) -> int:
    """How many entries were recorded in ``[start, end)``: what closing that month seals."""
    value = await connection.fetchval(
        "SELECT count(*) FROM entries WHERE recorded_at >= $1 AND recorded_at < $2", start, end
    )
    return int(value)
