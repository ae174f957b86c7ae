"""Contracts, members' personal data and consents, the disclosure log, contract limits.

- contract_versions: immutable versions of partners' terms with the SHA-256 of their file;
  the version in force is the latest whose effective_from has passed on the ledger clock.
- member_daily_points: points per member, partner, day and kind, for the daily limit; one row
  per member and day, so no partner-wide hot row.
- member_keys: each member's data key, wrapped by the master key; erasure deletes it.
- member_personal_data: personal fields, AES-256-GCM under the member's key, bound to the
  member and the field by associated data.
- consents and disclosures: append-only histories.
- ledger_post now checks the contract version in force, its limits, and erased members.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
CREATE TABLE contract_versions (
    partner_id text NOT NULL REFERENCES partners (partner_id),
    version integer NOT NULL CONSTRAINT contract_versions_version CHECK (version >= 1),
    effective_from timestamptz NOT NULL,
    sha256 text NOT NULL CONSTRAINT contract_versions_sha256 CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    currency text NOT NULL REFERENCES assets (asset),
    issue_rate numeric(20, 6) NOT NULL CONSTRAINT contract_versions_issue_rate CHECK (issue_rate >= 0),
    redemption_rate numeric(20, 6) NOT NULL
        CONSTRAINT contract_versions_redemption_rate CHECK (redemption_rate >= 0),
    fee_per_entry numeric(20, 6) NOT NULL CONSTRAINT contract_versions_fee CHECK (fee_per_entry >= 0),
    max_points_per_transaction bigint NOT NULL,
    max_points_per_member_per_day bigint NOT NULL,
    purposes jsonb NOT NULL,
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partner_id, version),
    CONSTRAINT contract_versions_effective UNIQUE (partner_id, effective_from)
);
CREATE TRIGGER contract_versions_append_only BEFORE UPDATE OR DELETE ON contract_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE member_daily_points (
    member_id text NOT NULL,
    partner_id text NOT NULL,
    day date NOT NULL,
    kind text NOT NULL,
    points bigint NOT NULL CONSTRAINT member_daily_points_not_negative CHECK (points >= 0),
    PRIMARY KEY (member_id, partner_id, day, kind)
);

-- Customer service reads a member's entries with one partner; erasure leaves entries intact.
CREATE INDEX entries_member ON entries (member_id, recorded_at);

ALTER TABLE members ADD COLUMN enrolled_by text REFERENCES partners (partner_id);
ALTER TABLE members ADD COLUMN erased_at timestamptz;

CREATE TABLE member_keys (
    member_id text PRIMARY KEY REFERENCES members (member_id),
    wrapped_key bytea NOT NULL
);

CREATE TABLE member_personal_data (
    member_id text NOT NULL REFERENCES members (member_id),
    field text NOT NULL,
    ciphertext bytea NOT NULL,
    PRIMARY KEY (member_id, field)
);

CREATE TABLE consents (
    consent_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id text NOT NULL REFERENCES members (member_id),
    partner_id text NOT NULL,
    purpose text NOT NULL,
    granted boolean NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT ledger_now(),
    recorded_by text REFERENCES partners (partner_id),
    request_id text
);
CREATE INDEX consents_member ON consents (member_id, recorded_at);
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE disclosures (
    disclosure_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    disclosed_at timestamptz NOT NULL DEFAULT ledger_now(),
    partner_id text NOT NULL REFERENCES partners (partner_id),
    member_id text NOT NULL REFERENCES members (member_id),
    purpose text NOT NULL,
    fields text[] NOT NULL,
    contract_version integer NOT NULL,
    legal_basis text NOT NULL,
    request_id text NOT NULL
);
CREATE INDEX disclosures_member ON disclosures (member_id, disclosed_at);
CREATE INDEX disclosures_time ON disclosures (disclosed_at);
CREATE TRIGGER disclosures_append_only BEFORE UPDATE OR DELETE ON disclosures
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

ALTER TABLE idempotency_keys ADD COLUMN member_id text REFERENCES members (member_id)
    DEFERRABLE INITIALLY DEFERRED;

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
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        -- A concurrent twin waits here until the first commits, then fails on the key.
        INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, entry_id)
        VALUES (p_partner_id, p_idempotency_key, p_request_sha256, p_entry_id);
    END IF;

    v_now := ledger_now();
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
ALTER TABLE idempotency_keys DROP COLUMN member_id;
DROP TABLE disclosures;
DROP TABLE consents;
DROP TABLE member_personal_data;
DROP TABLE member_keys;
ALTER TABLE members DROP COLUMN erased_at;
ALTER TABLE members DROP COLUMN enrolled_by;
DROP TABLE member_daily_points;
DROP INDEX entries_member;
DROP TABLE contract_versions;
"""


def upgrade() -> None:
    for statement in split_sql(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
    # The ledger_post of revision 0001 comes back from the migration that made it.
    core_path = Path(__file__).with_name("2026_11_29_0001_ledger_core.py")
    spec = importlib.util.spec_from_file_location("ledger_core_0001", core_path)
    assert spec is not None
    assert spec.loader is not None
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    for statement in split_sql(core.UPGRADE):
        if statement.startswith("CREATE FUNCTION ledger_post"):
            op.execute(statement)
