"""Expiry by lots: every point a member holds belongs to a lot, and every debit names its lots.

An issue (and a positive adjustment) makes a lot: its issuing partner and contract version, its
points, what ``remaining`` of them, and ``expires_at``, computed once at issue by the coalition's
policy (``lot_expires_at``; NULL: never). Redeems, captures, expiries, negative adjustments and
the reversal of an issue take lots in the order ``(expires_at, recorded_at, entry_id, lot_id)``
(``lots_take``), the member's open holds reserving the first of them; each take is a row of
the append-only ``lot_consumptions``, written in the same call as the posting. The reversal of
a redeem gives back the lots it took (``lots_give_back``: a consumption of negative points, or
for a lot past its time a new lot of the same cohort, ``origin_lot_id`` naming the one it
replaces). The database holds the rules:
- the sum of a member's lot remainders is its balance (``check_member_lots``, at commit);
- what remains of a lot is its points less its consumptions (``check_lot_remaining``, at commit);
- a lot is never removed and changes only in ``remaining`` (``lots_guard``); consumptions are
  append-only.
The expiry run (``expiry_run_batch``) expires, member by member in batches, the points of lots
past their time that no hold reserves, one expiry entry per member. A contract version gains
``breakage_share_rate`` (money returned to the issuer per expired point; 0 by default), and the
outbox the ``points.expiring`` reminder. Balances that exist at the upgrade become one lot per
member that never expires (cohort: the upgrade's time).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import function_sql, split_sql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE_TABLES = (
    "lot_expires_at",
    "expiry_lock_class",
    "lots_guard",
    "check_member_lots",
)
AFTER_TABLES = ("check_lot_remaining", "lots_take", "lots_give_back", "expiry_run_batch")
"""Functions that take a table's row type (lots) come after the tables."""
REPLACED = (("ledger_post", "0002"),)
"""Functions of an earlier revision this one replaces, and that revision (its downgrade loads it
again): ledger_post makes and takes lots."""

EVENT_TYPES_BEFORE = """
        'entry.recorded', 'hold.authorized', 'hold.captured', 'hold.voided', 'hold.expired',
        'period.closed', 'statement.available', 'key.revoked', 'contract.version_effective',
        'webhook_endpoint.disabled', 'webhook_endpoint.test'"""

TABLES = rf"""
CREATE TABLE lots (
    lot_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id text NOT NULL REFERENCES members (member_id),
    entry_id uuid REFERENCES entries (entry_id),
    partner_id text REFERENCES partners (partner_id),
    contract_version integer,
    origin_lot_id bigint REFERENCES lots (lot_id),
    points bigint NOT NULL CONSTRAINT lots_points CHECK (points > 0),
    remaining bigint NOT NULL
        CONSTRAINT lots_remaining CHECK (remaining >= 0 AND remaining <= points),
    recorded_at timestamptz NOT NULL,
    cohort_at timestamptz NOT NULL,
    expires_at timestamptz,
    CONSTRAINT lots_issued_under_contract
        CHECK ((partner_id IS NULL) = (contract_version IS NULL))
);
-- The order a member's lots are taken in; only lots with points left.
CREATE INDEX lots_member_order ON lots (member_id, expires_at, recorded_at, entry_id, lot_id)
    WHERE remaining > 0;
CREATE INDEX lots_entry ON lots (entry_id);
CREATE INDEX lots_origin ON lots (origin_lot_id) WHERE origin_lot_id IS NOT NULL;
CREATE TRIGGER lots_guarded BEFORE UPDATE OR DELETE ON lots
    FOR EACH ROW EXECUTE FUNCTION lots_guard();

-- points > 0: taken from the lot by the entry; < 0: given back to it by a reversal.
CREATE TABLE lot_consumptions (
    entry_id uuid NOT NULL REFERENCES entries (entry_id),
    lot_id bigint NOT NULL REFERENCES lots (lot_id),
    points bigint NOT NULL CONSTRAINT lot_consumptions_points CHECK (points <> 0),
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX lot_consumptions_lot ON lot_consumptions (lot_id);
CREATE TRIGGER lot_consumptions_append_only BEFORE UPDATE OR DELETE ON lot_consumptions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER lot_consumptions_no_truncate BEFORE TRUNCATE ON lot_consumptions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

INSERT INTO lots (member_id, points, remaining, recorded_at, cohort_at)
SELECT b.member_id, b.balance_points, b.balance_points, ledger_now(), ledger_now()
  FROM member_balances b WHERE b.balance_points > 0;

CREATE CONSTRAINT TRIGGER member_balances_lots_match AFTER UPDATE OF balance_points
    ON member_balances DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.balance_points IS DISTINCT FROM NEW.balance_points)
    EXECUTE FUNCTION check_member_lots();
CREATE CONSTRAINT TRIGGER lots_match_balance AFTER INSERT OR UPDATE ON lots
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_member_lots();

ALTER TABLE contract_versions
    ADD COLUMN breakage_share_rate numeric(20, 6) NOT NULL DEFAULT 0
        CONSTRAINT contract_versions_breakage_share_rate CHECK (breakage_share_rate >= 0);

ALTER TABLE events DROP CONSTRAINT events_type;
ALTER TABLE events ADD CONSTRAINT events_type CHECK (type IN ({EVENT_TYPES_BEFORE},
        'points.expiring'));
"""

AFTER_TABLES_SQL = r"""
CREATE CONSTRAINT TRIGGER lots_consumed_match AFTER INSERT OR UPDATE ON lots
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_lot_remaining();
CREATE CONSTRAINT TRIGGER lot_consumptions_match AFTER INSERT ON lot_consumptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_lot_remaining();
"""

DOWNGRADE = rf"""
ALTER TABLE webhook_deliveries DISABLE TRIGGER USER;
DELETE FROM webhook_deliveries d USING events e
 WHERE e.event_id = d.event_id AND e.type = 'points.expiring';
ALTER TABLE webhook_deliveries ENABLE TRIGGER USER;
ALTER TABLE events DISABLE TRIGGER events_append_only;
DELETE FROM events WHERE type = 'points.expiring';
ALTER TABLE events ENABLE TRIGGER events_append_only;
ALTER TABLE events DROP CONSTRAINT events_type;
ALTER TABLE events ADD CONSTRAINT events_type CHECK (type IN ({EVENT_TYPES_BEFORE}));
ALTER TABLE contract_versions DROP COLUMN breakage_share_rate;
DROP TRIGGER member_balances_lots_match ON member_balances;
DROP TABLE lot_consumptions;
DROP TABLE lots;
"""


def upgrade() -> None:
    for name in BEFORE_TABLES:
        op.execute(function_sql(name, revision))
    for statement in split_sql(TABLES):
        op.execute(statement)
    for name in AFTER_TABLES:
        op.execute(function_sql(name, revision))
    for statement in split_sql(AFTER_TABLES_SQL):
        op.execute(statement)
    for name, _ in REPLACED:
        op.execute(f"DROP FUNCTION {name}")
        op.execute(function_sql(name, revision))


def downgrade() -> None:
    for name, earlier in REPLACED:
        op.execute(f"DROP FUNCTION {name}")
        op.execute(function_sql(name, earlier))
    for name in reversed(AFTER_TABLES):
        op.execute(f"DROP FUNCTION {name} CASCADE")
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
    for name in reversed(BEFORE_TABLES):
        op.execute(f"DROP FUNCTION {name}")
