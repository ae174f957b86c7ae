"""Outbound events: a transactional outbox, partners' webhook endpoints and their deliveries.

Every event is a row of ``events``, written by ``outbox_record`` in the transaction of the write
it tells of (triggers on entries, hold events, periods, statements and partner keys:
``events_of_ledger``), so a rolled-back or refused write leaves no event. Its ``body`` is the
Standard Webhooks payload, the exact bytes each delivery signs and sends; ``txid`` is the
writing transaction's id (``pg_current_xact_id``), by which ``GET /v1/events`` pages only below the oldest transaction
still running, so a row committed out of order is never skipped. Deliveries are claimed by the
workers of ``serve`` with ``FOR UPDATE SKIP LOCKED`` and a lease; their times are the real
clock's (``clock_timestamp()``), never the sandbox's. Coalition keys gain a purpose: one
current key signs statements and receipts, another webhooks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import function_sql, split_sql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("outbox_record", "events_of_ledger", "contract_versions_announce")
GUARD_TRIGGERS = {
    "coalition_keys_guard": """
CREATE TRIGGER coalition_keys_guarded BEFORE UPDATE OR DELETE ON coalition_keys
    FOR EACH ROW EXECUTE FUNCTION coalition_keys_guard()
""",
    "holds_guard": """
CREATE TRIGGER holds_guarded BEFORE UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION holds_guard()
""",
}
"""Each replaced guard's trigger, made again with the function (DROP ... CASCADE removes it)."""
REPLACED = (("coalition_keys_guard", "0001"), ("holds_guard", "0002"))
"""Functions of an earlier revision this one replaces, and that revision (its downgrade loads
it again): a coalition key's purpose never changes; an open hold may lose its metadata alone."""

TABLES = r"""
CREATE TABLE events (
    event_id text PRIMARY KEY CONSTRAINT events_id_format CHECK (event_id ~ '^evt_[0-9a-f]{32}$'),
    seq bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT events_seq UNIQUE,
    txid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    type text NOT NULL CONSTRAINT events_type CHECK (type IN (
        'entry.recorded', 'hold.authorized', 'hold.captured', 'hold.voided', 'hold.expired',
        'period.closed', 'statement.available', 'key.revoked', 'contract.version_effective',
        'webhook_endpoint.disabled', 'webhook_endpoint.test')),
    partner_id text REFERENCES partners (partner_id),
    occurred_at timestamptz NOT NULL,
    data jsonb NOT NULL,
    body bytea NOT NULL,
    dedupe_key text CONSTRAINT events_dedupe_key UNIQUE
);
CREATE INDEX events_partner_order ON events (partner_id, txid, seq);
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- secret: the HMAC key of the extra v1 signature (whsec_...), AES-256-GCM under the master key;
-- NULL when the endpoint asked for Ed25519 (v1a) only.
CREATE TABLE webhook_endpoints (
    endpoint_id text PRIMARY KEY CONSTRAINT webhook_endpoints_id_format
        CHECK (endpoint_id ~ '^we_[0-9a-f]{32}$'),
    partner_id text NOT NULL REFERENCES partners (partner_id),
    url text NOT NULL,
    event_types text[] NOT NULL,
    secret bytea,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at timestamptz,
    disabled_at timestamptz,
    disabled_reason text,
    failing_since timestamptz,
    idempotency_key text,
    CONSTRAINT webhook_endpoints_key UNIQUE (partner_id, idempotency_key)
);
CREATE INDEX webhook_endpoints_partner ON webhook_endpoints (partner_id)
    WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL REFERENCES events (event_id),
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    status text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_deliveries_status
        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz,
    last_attempt_at timestamptz,
    last_status integer,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT webhook_deliveries_once UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (status, delivery_id)
    WHERE status = 'failed';

CREATE TRIGGER entries_events AFTER INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION events_of_ledger();
CREATE TRIGGER hold_events_events AFTER INSERT ON hold_events
    FOR EACH ROW EXECUTE FUNCTION events_of_ledger();
CREATE TRIGGER periods_events AFTER INSERT ON periods
    FOR EACH ROW EXECUTE FUNCTION events_of_ledger();
CREATE TRIGGER statements_events AFTER INSERT ON statements
    FOR EACH ROW EXECUTE FUNCTION events_of_ledger();
CREATE TRIGGER partner_keys_events AFTER UPDATE OF revoked_at ON partner_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION events_of_ledger();

ALTER TABLE coalition_keys
    ADD COLUMN purpose text NOT NULL DEFAULT 'statements'
        CONSTRAINT coalition_keys_purpose CHECK (purpose IN ('statements', 'webhooks'));
DROP INDEX coalition_keys_one_current;
CREATE UNIQUE INDEX coalition_keys_one_current ON coalition_keys (purpose)
    WHERE retired_at IS NULL;
"""

DOWNGRADE = r"""
DROP INDEX coalition_keys_one_current;
ALTER TABLE coalition_keys DISABLE TRIGGER coalition_keys_guarded;
DELETE FROM coalition_keys WHERE purpose = 'webhooks';
ALTER TABLE coalition_keys ENABLE TRIGGER coalition_keys_guarded;
CREATE UNIQUE INDEX coalition_keys_one_current ON coalition_keys ((true)) WHERE retired_at IS NULL;
ALTER TABLE coalition_keys DROP COLUMN purpose;
DROP TRIGGER partner_keys_events ON partner_keys;
DROP TRIGGER statements_events ON statements;
DROP TRIGGER periods_events ON periods;
DROP TRIGGER hold_events_events ON hold_events;
DROP TRIGGER entries_events ON entries;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE events;
"""


def upgrade() -> None:
    # The functions first: the triggers below name events_of_ledger.
    for name in FUNCTIONS:
        op.execute(function_sql(name, revision))
    for statement in split_sql(TABLES):
        op.execute(statement)
    for name, _ in REPLACED:
        op.execute(f"DROP FUNCTION {name} CASCADE")
        op.execute(function_sql(name, revision))
        op.execute(GUARD_TRIGGERS[name])


def downgrade() -> None:
    for name, earlier in REPLACED:
        op.execute(f"DROP FUNCTION {name} CASCADE")
        op.execute(function_sql(name, earlier))
        op.execute(GUARD_TRIGGERS[name])
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
    for name in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {name}")
