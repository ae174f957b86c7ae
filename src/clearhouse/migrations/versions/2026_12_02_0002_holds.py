"""Holds: points reserved for a partner, then captured (a redeem), voided or expired.

A member's balance row gains ``held_points``; the available points are balance - held, and
every posting that takes points checks them (``ledger_post`` 0002). A hold is a row of
``holds``; its life is the append-only ``hold_events`` (authorized, then one of captured,
voided, expired). The database holds the rules:
- 0 <= held <= balance (CHECK), and held is the sum of the member's open holds (a constraint
  trigger checked at commit, ``check_member_held``);
- a hold changes once, from open to its final state, and is never deleted (``holds_guard``);
  a hold that ended has its final event, and a captured one its redeem entry of exactly the
  captured points (``check_hold_ended``);
  its events are never changed; each hold has one final event (primary key);
- capture and void decide expiry in their own conditional update (``hold_take``), and every
  write that needs available points first releases the member's lapsed holds
  (``hold_release_lapsed``); the sweeper (``holds_expire``) ends the rest;
- a contract's ``max_hold_seconds`` caps a hold's time (``hold_authorize``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import function_sql, split_sql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACED = ("ledger_post",)
"""Functions of an earlier revision that this one replaces (the downgrade loads 0001 again)."""

BEFORE_TABLES = ("hold_sweep_lock_class", "holds_guard", "check_member_held", "check_hold_ended")
AFTER_TABLES = (
    "contract_in_force",
    "hold_release_lapsed",
    "hold_take",
    "hold_authorize",
    "hold_void",
    "holds_expire",
)
"""Functions that take a table's row type (holds, contract_versions) come after the tables."""

TABLES = r"""
ALTER TABLE member_balances
    ADD COLUMN held_points bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT member_held_within_balance
        CHECK (held_points >= 0 AND held_points <= balance_points);

ALTER TABLE contract_versions
    ADD COLUMN max_hold_seconds integer NOT NULL DEFAULT 604800
        CONSTRAINT contract_versions_max_hold_seconds CHECK (max_hold_seconds >= 1);

-- metadata: what the partner sent with the authorization; dropped when the hold ends (a capture
-- keeps it with its redeem entry, under the contract's retention).
CREATE TABLE holds (
    hold_id uuid PRIMARY KEY,
    partner_id text NOT NULL REFERENCES partners (partner_id),
    member_id text NOT NULL REFERENCES members (member_id),
    points bigint NOT NULL CONSTRAINT holds_points CHECK (points > 0),
    contract_version integer NOT NULL,
    reference text NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'open' CONSTRAINT holds_status
        CHECK (status IN ('open', 'captured', 'voided', 'expired')),
    closed_at timestamptz,
    captured_points bigint,
    capture_entry_id uuid UNIQUE REFERENCES entries (entry_id) DEFERRABLE INITIALLY DEFERRED,
    metadata jsonb,
    signature_input text,
    signature text,
    content_digest text,
    signature_base text,
    CONSTRAINT holds_expiry_after_creation CHECK (expires_at > created_at),
    CONSTRAINT holds_closed_when_final CHECK ((status = 'open') = (closed_at IS NULL)),
    CONSTRAINT holds_capture_recorded CHECK (
        (status = 'captured') = (capture_entry_id IS NOT NULL)
        AND (status = 'captured') = (captured_points IS NOT NULL)),
    CONSTRAINT holds_capture_within_hold CHECK (captured_points BETWEEN 1 AND points)
);
CREATE INDEX holds_open_by_member ON holds (member_id, expires_at) WHERE status = 'open';
CREATE INDEX holds_open_by_expiry ON holds (expires_at, hold_id) WHERE status = 'open';
CREATE INDEX holds_partner ON holds (partner_id, created_at, hold_id);
CREATE INDEX holds_partner_status ON holds (partner_id, status, created_at, hold_id);
CREATE TRIGGER holds_guarded BEFORE UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION holds_guard();
CREATE TRIGGER holds_no_truncate BEFORE TRUNCATE ON holds
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- points: what the event reserved, captured or released; released_points: what a capture for
-- less than the hold gave back. Balances after: as the partner's answer showed them.
CREATE TABLE hold_events (
    hold_id uuid NOT NULL REFERENCES holds (hold_id),
    event text NOT NULL CONSTRAINT hold_events_event
        CHECK (event IN ('authorized', 'captured', 'voided', 'expired')),
    final boolean GENERATED ALWAYS AS (event <> 'authorized') STORED,
    recorded_at timestamptz NOT NULL,
    points bigint NOT NULL CONSTRAINT hold_events_points CHECK (points > 0),
    released_points bigint NOT NULL DEFAULT 0
        CONSTRAINT hold_events_released CHECK (released_points >= 0),
    member_balance_after bigint,
    member_held_after bigint,
    entry_id uuid REFERENCES entries (entry_id) DEFERRABLE INITIALLY DEFERRED,
    reason text,
    PRIMARY KEY (hold_id, final)
);
CREATE TRIGGER hold_events_append_only BEFORE UPDATE OR DELETE ON hold_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER hold_events_no_truncate BEFORE TRUNCATE ON hold_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

ALTER TABLE idempotency_keys
    ADD COLUMN hold_id uuid REFERENCES holds (hold_id) DEFERRABLE INITIALLY DEFERRED;

-- A capture's redeem entry names the hold it ended: part of its canonical form, so an auditor
-- sees why its partner signature is of the capture's path.
ALTER TABLE entries
    ADD COLUMN hold_id uuid UNIQUE REFERENCES holds (hold_id) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT entries_hold_is_a_redeem CHECK (hold_id IS NULL OR kind = 'redeem');

CREATE CONSTRAINT TRIGGER member_balances_held_matches AFTER UPDATE OF held_points
    ON member_balances DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.held_points IS DISTINCT FROM NEW.held_points)
    EXECUTE FUNCTION check_member_held();
CREATE CONSTRAINT TRIGGER holds_held_matches AFTER INSERT OR UPDATE ON holds
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_member_held();
CREATE CONSTRAINT TRIGGER holds_ended_recorded AFTER UPDATE ON holds
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status <> 'open')
    EXECUTE FUNCTION check_hold_ended();
"""

DOWNGRADE = r"""
DROP TRIGGER member_balances_held_matches ON member_balances;
ALTER TABLE entries DROP COLUMN hold_id;
ALTER TABLE idempotency_keys DROP COLUMN hold_id;
DROP TABLE hold_events;
DROP TABLE holds;
ALTER TABLE contract_versions DROP COLUMN max_hold_seconds;
ALTER TABLE member_balances DROP COLUMN held_points;
"""


def upgrade() -> None:
    for name in BEFORE_TABLES:
        op.execute(function_sql(name, revision))
    for statement in split_sql(TABLES):
        op.execute(statement)
    for name in AFTER_TABLES:
        op.execute(function_sql(name, revision))
    for name in REPLACED:
        op.execute(f"DROP FUNCTION {name}")
        op.execute(function_sql(name, revision))


def downgrade() -> None:
    for name in REPLACED:
        op.execute(f"DROP FUNCTION {name}")
        op.execute(function_sql(name, down_revision or ""))
    for name in reversed(AFTER_TABLES):
        op.execute(f"DROP FUNCTION {name}")
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
    for name in reversed(BEFORE_TABLES):
        op.execute(f"DROP FUNCTION {name}")
