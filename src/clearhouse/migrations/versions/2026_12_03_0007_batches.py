"""Batches: up to a thousand issues and redeems of one partner in one signed request.

``ledger_post_batch`` records a batch's items in one call, each by ``ledger_post`` in its own
subtransaction, so that every rule of a single entry holds for each item and a refused item
leaves nothing behind. ``transaction_batches`` keeps what a batch answered, per item, under the
batch's own Idempotency-Key (recorded in ``idempotency_keys`` like every other key of the
partner): the entry an item made (or replayed), or the problem that refused it, so that a retry
of the batch is answered the same. It is append-only, like the ledger; an atomic batch that was
refused wrote nothing, not even its key.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import function_sql, split_sql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("ledger_post_batch",)

TABLES = r"""
CREATE TABLE transaction_batches (
    partner_id text NOT NULL,
    idempotency_key text NOT NULL,
    atomic boolean NOT NULL,
    items integer NOT NULL CHECK (items BETWEEN 1 AND 1000),
    outcomes jsonb NOT NULL
        CHECK (jsonb_typeof(outcomes) = 'array' AND jsonb_array_length(outcomes) = items),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partner_id, idempotency_key),
    FOREIGN KEY (partner_id, idempotency_key)
        REFERENCES idempotency_keys (partner_id, idempotency_key)
);
CREATE TRIGGER transaction_batches_append_only BEFORE UPDATE OR DELETE ON transaction_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER transaction_batches_no_truncate BEFORE TRUNCATE ON transaction_batches
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
"""

DOWNGRADE = """
DROP TABLE transaction_batches;
"""


def upgrade() -> None:
    for statement in split_sql(TABLES):
        op.execute(statement)
    for name in FUNCTIONS:
        op.execute(function_sql(name, revision))


def downgrade() -> None:
    for name in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {name}")
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
