"""Partner evidence that stands alone, and coalition keys with a history.

- entries.signature_base: the exact RFC 9421 signature base (section 2.5) that the partner's
  key signed, kept as text, so that the partner's signature on an entry verifies from the
  entry alone with the partner's public key;
- ledger_post takes it (``p_signature_base``), otherwise unchanged from revision 0004, from
  which this revision derives it (each change below must apply exactly once);
- coalition_keys: every key that ever signed receipts and statements, with its validity; a key
  retires when the next one takes over and is never removed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = r"""
ALTER TABLE entries ADD COLUMN signature_base text;

CREATE TABLE coalition_keys (
    key_id text PRIMARY KEY,
    algorithm text NOT NULL DEFAULT 'ed25519' CONSTRAINT coalition_keys_algorithm
        CHECK (algorithm = 'ed25519'),
    public_key bytea NOT NULL UNIQUE CONSTRAINT coalition_keys_length
        CHECK (length(public_key) = 32),
    not_before timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at timestamptz,
    CONSTRAINT coalition_keys_order CHECK (retired_at IS NULL OR retired_at >= not_before)
);
CREATE UNIQUE INDEX coalition_keys_one_current ON coalition_keys ((true)) WHERE retired_at IS NULL;

-- A key is never removed nor changed, except that a current key retires once.
CREATE FUNCTION coalition_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.retired_at IS NOT NULL OR NEW.retired_at IS NULL
       OR (NEW.key_id, NEW.algorithm, NEW.public_key, NEW.not_before)
          IS DISTINCT FROM (OLD.key_id, OLD.algorithm, OLD.public_key, OLD.not_before) THEN
        RAISE EXCEPTION 'coalition keys are never removed, and change only by retiring';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER coalition_keys_guarded BEFORE UPDATE OR DELETE ON coalition_keys
    FOR EACH ROW EXECUTE FUNCTION coalition_keys_guard();
"""

CHANGES = (
    (
        "    p_content_digest text,\n    p_zone text\n",
        "    p_content_digest text,\n    p_zone text,\n    p_signature_base text DEFAULT NULL\n",
    ),
    (
        "idempotency_key, signature_input, signature, content_digest)",
        "idempotency_key, signature_input, signature, content_digest, signature_base)",
    ),
    (
        "p_idempotency_key, p_signature_input, p_signature, p_content_digest);",
        "p_idempotency_key, p_signature_input, p_signature, p_content_digest,\n            p_signature_base);",
    ),
)

DOWNGRADE = r"""
DROP TABLE coalition_keys;
DROP FUNCTION coalition_keys_guard;
ALTER TABLE entries DROP COLUMN signature_base;
"""


def _revision_0004() -> ModuleType:
    path = Path(__file__).with_name("2026_11_29_0004_periods_and_statements.py")
    spec = importlib.util.spec_from_file_location("periods_0004", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ledger_post_0004() -> str:
    (statement,) = (
        s
        for s in split_sql(_revision_0004().UPGRADE)
        if s.startswith("CREATE FUNCTION ledger_post")
    )
    return statement


def ledger_post() -> str:
    """The function of this revision: revision 0004's, taking the signature base."""
    function = _ledger_post_0004()
    for old, new in CHANGES:
        assert function.count(old) == 1, old
        function = function.replace(old, new)
    return function


def upgrade() -> None:
    for statement in split_sql(TABLES):
        op.execute(statement)
    op.execute("DROP FUNCTION ledger_post")
    op.execute(ledger_post())


def downgrade() -> None:
    op.execute("DROP FUNCTION ledger_post")
    op.execute(_ledger_post_0004())
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
