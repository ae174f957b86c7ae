"""The console: signed-in browser sessions, and the append-only log of operators' actions.

A console session is what a browser holds after its operator or auditor token was shown once at
sign-in: the cookie's secret is stored only as its SHA-256, with the token it stands for, its CSRF
token and its end (``expires_at``, or ``ended_at`` at sign-out). A session lives no longer than
its token: a revoked or expired token ends every session made with it.

``operator_actions`` is every close, settle, key revocation, webhook replay and erasure, by
console or API: which token, when (the database's own clock, not the ledger's), what and on what,
and how it ended (``done`` or the problem's code). It is append-only, like the ledger.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = r"""
CREATE TABLE console_sessions (
    session_sha256 bytea PRIMARY KEY CHECK (octet_length(session_sha256) = 32),
    token_id text NOT NULL REFERENCES api_tokens (token_id),
    csrf_token text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE operator_actions (
    action_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    acted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    token_id text NOT NULL REFERENCES api_tokens (token_id),
    channel text NOT NULL CHECK (channel IN ('api', 'console')),
    action text NOT NULL CHECK (
        action IN ('period.close', 'period.settle', 'key.revoke', 'delivery.replay', 'member.erase')
    ),
    subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    outcome text NOT NULL CHECK (outcome ~ '^[a-z_]{1,64}$'),
    request_id text NOT NULL
);
CREATE INDEX operator_actions_time ON operator_actions (acted_at);
CREATE TRIGGER operator_actions_append_only BEFORE UPDATE OR DELETE ON operator_actions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER operator_actions_no_truncate BEFORE TRUNCATE ON operator_actions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
"""

DOWNGRADE = """
DROP TABLE operator_actions;
DROP TABLE console_sessions;
"""


def upgrade() -> None:
    for statement in split_sql(TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
