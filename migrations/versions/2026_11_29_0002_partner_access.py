"""Partner access: signing keys, the nonce replay store, bearer tokens, entry metadata.

- partner_keys: Ed25519 public keys (32 raw bytes) of partners; several may be active at once
  (rotation); a key counts only between not_before and not_after and until revoked_at.
- signature_nonces: each (key_id, nonce) is accepted once while its signature could still be
  fresh; rows past expires_at are purged. Shared by every API worker.
- api_tokens: operator and auditor bearer tokens, stored only as SHA-256 of the token.
- entry_metadata: what a partner sent with an entry beyond the ledger's fields; kept apart from
  the append-only entries so that retention can remove it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
CREATE TABLE partner_keys (
    key_id text PRIMARY KEY CONSTRAINT partner_keys_id_format CHECK (key_id ~ '^[!-~]{1,128}$'),
    partner_id text NOT NULL REFERENCES partners (partner_id),
    public_key bytea NOT NULL CONSTRAINT partner_keys_ed25519 CHECK (length(public_key) = 32),
    not_before timestamptz NOT NULL DEFAULT clock_timestamp(),
    not_after timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT partner_keys_window CHECK (not_after IS NULL OR not_after > not_before)
);
CREATE INDEX partner_keys_partner ON partner_keys (partner_id);

CREATE TABLE signature_nonces (
    key_id text NOT NULL,
    nonce text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);

CREATE TABLE api_tokens (
    token_id text PRIMARY KEY,
    role text NOT NULL CONSTRAINT api_tokens_role CHECK (role IN ('operator', 'auditor')),
    token_sha256 bytea NOT NULL UNIQUE,
    label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE entry_metadata (
    entry_id uuid PRIMARY KEY REFERENCES entries (entry_id),
    purpose text NOT NULL,
    metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX entry_metadata_recorded_at ON entry_metadata (recorded_at);
"""

DOWNGRADE = r"""
DROP TABLE entry_metadata;
DROP TABLE api_tokens;
DROP TABLE signature_nonces;
DROP TABLE partner_keys;
"""


def upgrade() -> None:
    for statement in split_sql(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
