"""Periods and statements: closing seals a month, settling states and signs it.

- periods: a row per closed month, with its ledger root (RFC 9162 tree head chained to the
  previous period's root); a month without a row is open.
- statements: the canonical JSON of each statement, its SHA-256 and Ed25519 signature; issued
  statements never change.
- ledger_post refuses entries whose period is closed, and holds the period's advisory lock
  shared while it records, which closing takes exclusively.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
CREATE FUNCTION period_lock_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 1128812 $$;

CREATE TABLE periods (
    period text PRIMARY KEY CONSTRAINT periods_format CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status text NOT NULL CONSTRAINT periods_status CHECK (status IN ('closed', 'settled')),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    closed_at timestamptz NOT NULL,
    entry_count bigint NOT NULL,
    tree_head bytea NOT NULL,
    previous_root bytea NOT NULL,
    root bytea NOT NULL,
    settled_at timestamptz
);

CREATE TABLE statements (
    period text NOT NULL REFERENCES periods (period),
    party text NOT NULL,
    sequence integer NOT NULL,
    document bytea NOT NULL,
    sha256 bytea NOT NULL,
    signature bytea NOT NULL,
    key_id text NOT NULL,
    PRIMARY KEY (period, party)
);
CREATE TRIGGER statements_append_only BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

DROP FUNCTION ledger_post;

CREATE FUNCTION ledger_post(
    p_entry_id uuid,
    p_kind text,
    p_partner_id text,
    p_member_id text,
    p_points bigint,
    p_member_delta bigint,
    p_contract_version integer,
    p_occurred_at timestamptz,
    p_reference text,
    p_reversal_of uuid,
    p_accounts text[],
    p_assets text[],
    p_amounts numeric[],
    p_idempotency_key text,
    p_request_sha256 bytea,
    p_signature_input text,
    p_signature text,
    p_content_digest text,
    p_zone text
) RETURNS TABLE (recorded_at timestamptz, member_balance_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_remaining bigint;
    v_balance bigint;
    v_now timestamptz;
    v_terms record;
    v_period text;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        -- A concurrent twin waits here until the first commits, then fails on the key.
        INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, entry_id)
        VALUES (p_partner_id, p_idempotency_key, p_request_sha256, p_entry_id);
    END IF;

    v_now := ledger_now();
    -- The period of this entry is open, and stays open until it commits: closing takes this
    -- lock exclusively, so it waits for entries in flight, and every one after it sees the
    -- period closed. Shared with every other posting, so postings never queue on each other.
    v_period := to_char(v_now AT TIME ZONE p_zone, 'YYYY-MM');
    PERFORM pg_advisory_xact_lock_shared(
        period_lock_class(), to_char(v_now AT TIME ZONE p_zone, 'YYYYMM')::integer);
    IF EXISTS (SELECT 1 FROM periods pr WHERE pr.period = v_period) THEN
        RAISE EXCEPTION USING ERRCODE = 'CH419', MESSAGE = format('period %s is closed', v_period);
    END IF;
    IF p_kind IN ('issue', 'redeem') THEN
        -- The version in force is decided here, at the ledger clock, never from a stale cache:
        -- the caller names the version it checked purposes and limits against.
        SELECT c.version, c.max_points_per_transaction, c.max_points_per_member_per_day
          INTO v_terms FROM contract_versions c
         WHERE c.partner_id = p_partner_id AND c.effective_from <= v_now
         ORDER BY c.effective_from DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CH403',
                MESSAGE = 'the partner has no contract version in force';
        END IF;
        IF v_terms.version IS DISTINCT FROM p_contract_version THEN
            RAISE EXCEPTION USING ERRCODE = 'CH409',
                MESSAGE = format('contract version %s is in force', v_terms.version);
        END IF;
        IF p_points > v_terms.max_points_per_transaction THEN
            RAISE EXCEPTION USING ERRCODE = 'CH422', MESSAGE = format(
                'the contract allows at most %s points per transaction',
                v_terms.max_points_per_transaction);
        END IF;
        IF EXISTS (SELECT 1 FROM members m
                    WHERE m.member_id = p_member_id AND m.erased_at IS NOT NULL) THEN
            RAISE EXCEPTION USING ERRCODE = 'CH410', MESSAGE = 'the member was erased';
        END IF;
        -- One row per member, partner, day and kind: spread like the members, never hot.
        INSERT INTO member_daily_points AS d (member_id, partner_id, day, kind, points)
        VALUES (p_member_id, p_partner_id, (v_now AT TIME ZONE p_zone)::date, p_kind, p_points)
        ON CONFLICT (member_id, partner_id, day, kind)
        DO UPDATE SET points = d.points + excluded.points
         WHERE d.points + excluded.points <= v_terms.max_points_per_member_per_day
        RETURNING d.points INTO v_remaining;
        IF NOT FOUND OR v_remaining > v_terms.max_points_per_member_per_day THEN
            RAISE EXCEPTION USING ERRCODE = 'CH423', MESSAGE = format(
                'the contract allows at most %s points per member and day',
                v_terms.max_points_per_member_per_day);
        END IF;
    END IF;

    IF p_reversal_of IS NOT NULL THEN
        PERFORM 1 FROM entries e
         WHERE e.entry_id = p_reversal_of AND e.partner_id IS NOT DISTINCT FROM p_partner_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'CH404', MESSAGE = 'entry to reverse not found';
        END IF;
        SELECT e.points - coalesce((SELECT sum(r.points) FROM entries r
                                     WHERE r.reversal_of = e.entry_id), 0)
          INTO v_remaining FROM entries e WHERE e.entry_id = p_reversal_of;
        IF v_remaining < p_points THEN
            RAISE EXCEPTION USING ERRCODE = 'CH003',
                MESSAGE = format('only %s points of the entry remain to reverse', v_remaining);
        END IF;
    END IF;

    IF p_member_id IS NOT NULL THEN
        UPDATE member_balances b
           SET balance_points = b.balance_points + p_member_delta
         WHERE b.member_id = p_member_id AND b.balance_points + p_member_delta >= 0
        RETURNING b.balance_points INTO v_balance;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM member_balances b WHERE b.member_id = p_member_id) THEN
                RAISE EXCEPTION USING ERRCODE = 'CH001',
                    MESSAGE = 'the member does not hold enough points';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'CH002', MESSAGE = 'unknown member';
        END IF;
    END IF;

    INSERT INTO entries (entry_id, kind, partner_id, member_id, points, member_balance_after,
                         contract_version, occurred_at, recorded_at, reference, reversal_of,
                         idempotency_key, signature_input, signature, content_digest)
    VALUES (p_entry_id, p_kind, p_partner_id, p_member_id, p_points, v_balance,
            p_contract_version, p_occurred_at, v_now, p_reference, p_reversal_of,
            p_idempotency_key, p_signature_input, p_signature, p_content_digest);

    INSERT INTO postings (entry_id, seq, account, asset, amount)
    SELECT p_entry_id, t.seq, t.account, t.asset, t.amount
      FROM unnest(p_accounts, p_assets, p_amounts) WITH ORDINALITY
           AS t(account, asset, amount, seq);

    RETURN QUERY SELECT v_now, v_balance;
END
$$;
"""

DOWNGRADE = r"""
DROP FUNCTION ledger_post;
DROP TABLE statements;
DROP TABLE periods;
DROP FUNCTION period_lock_class;
"""


def upgrade() -> None:
    for statement in split_sql(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
    # The ledger_post of revision 0003 comes back from the migration that made it.
    path = Path(__file__).with_name("2026_11_29_0003_contracts_and_members.py")
    spec = importlib.util.spec_from_file_location("contracts_0003", path)
    assert spec is not None
    assert spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    for statement in split_sql(previous.UPGRADE):
        if statement.startswith("CREATE FUNCTION ledger_post"):
            op.execute(statement)
