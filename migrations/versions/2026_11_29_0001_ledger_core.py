"""The ledger core: partners, members, accounts, entries, postings, idempotency, the clock.

The rules of SPEC section 3 that the database can hold, it holds here:
- an entry balances per asset and has at least two postings (deferred constraint triggers,
  checked at commit, so an entry and its postings may be inserted in any order);
- entries and postings are append-only (triggers refuse UPDATE, DELETE and TRUNCATE);
- a member balance never goes below zero (CHECK);
- one entry per (partner_id, idempotency_key) (primary key of idempotency_keys);
- recorded_at comes from the ledger clock: the database clock, shifted only in sandbox mode.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
CREATE TABLE ledger_clock (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT ledger_clock_singleton CHECK (singleton),
    offset_interval interval NOT NULL DEFAULT interval '0'
);
INSERT INTO ledger_clock DEFAULT VALUES;

-- The one clock of the ledger: the database's, plus the sandbox offset (zero outside sandbox).
CREATE FUNCTION ledger_now() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() + offset_interval FROM ledger_clock
$$;

CREATE TABLE assets (
    asset text PRIMARY KEY,
    kind text NOT NULL CONSTRAINT assets_kind CHECK (kind IN ('points', 'money')),
    scale smallint NOT NULL CONSTRAINT assets_scale CHECK (scale BETWEEN 0 AND 6)
);
INSERT INTO assets (asset, kind, scale) VALUES ('PTS', 'points', 0), ('EUR', 'money', 2);

CREATE TABLE partners (
    partner_id text PRIMARY KEY CONSTRAINT partners_id_format CHECK (partner_id ~ '^[!-9;-~]{1,64}$'),
    legal_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT ledger_now()
);

CREATE TABLE members (
    member_id text PRIMARY KEY CONSTRAINT members_id_format CHECK (member_id ~ '^[!-9;-~]{1,64}$'),
    created_at timestamptz NOT NULL DEFAULT ledger_now()
);

-- The only running balance of the ledger: one row per member, spread over all members.
CREATE TABLE member_balances (
    member_id text PRIMARY KEY REFERENCES members (member_id),
    balance_points bigint NOT NULL DEFAULT 0
        CONSTRAINT member_balance_not_negative CHECK (balance_points >= 0)
);

CREATE TABLE accounts (
    account text PRIMARY KEY,
    kind text NOT NULL CONSTRAINT accounts_kind CHECK (kind IN
        ('member', 'partner_issued', 'partner_redeemed', 'partner_settlement', 'coalition')),
    partner_id text REFERENCES partners (partner_id),
    member_id text REFERENCES members (member_id)
);
INSERT INTO accounts (account, kind) VALUES
    ('coalition:breakage', 'coalition'),
    ('coalition:adjustments', 'coalition'),
    ('coalition:settlement', 'coalition');

CREATE TABLE entries (
    entry_id uuid PRIMARY KEY,
    kind text NOT NULL CONSTRAINT entries_kind CHECK (kind IN
        ('issue', 'redeem', 'reversal', 'expiry', 'adjustment', 'settlement')),
    partner_id text REFERENCES partners (partner_id),
    member_id text REFERENCES members (member_id),
    points bigint NOT NULL CONSTRAINT entries_points CHECK (points >= 0),
    member_balance_after bigint,
    contract_version integer,
    occurred_at timestamptz,
    recorded_at timestamptz NOT NULL,
    reference text,
    reversal_of uuid REFERENCES entries (entry_id),
    idempotency_key text,
    signature_input text,
    signature text,
    content_digest text,
    CONSTRAINT entries_reversal_has_origin CHECK ((kind = 'reversal') = (reversal_of IS NOT NULL))
);
CREATE INDEX entries_recorded_at ON entries (recorded_at, entry_id);
CREATE INDEX entries_partner_recorded_at ON entries (partner_id, recorded_at, entry_id);
CREATE INDEX entries_reversal_of ON entries (reversal_of) WHERE reversal_of IS NOT NULL;

CREATE TABLE postings (
    entry_id uuid NOT NULL REFERENCES entries (entry_id),
    seq smallint NOT NULL,
    account text NOT NULL REFERENCES accounts (account),
    asset text NOT NULL REFERENCES assets (asset),
    amount numeric(30, 6) NOT NULL CONSTRAINT postings_amount_not_zero CHECK (amount <> 0),
    PRIMARY KEY (entry_id, seq),
    CONSTRAINT postings_points_are_whole CHECK (asset <> 'PTS' OR amount = trunc(amount))
);

CREATE TABLE idempotency_keys (
    partner_id text NOT NULL REFERENCES partners (partner_id),
    idempotency_key text NOT NULL,
    request_sha256 bytea NOT NULL,
    entry_id uuid REFERENCES entries (entry_id) DEFERRABLE INITIALLY DEFERRED,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partner_id, idempotency_key)
);

CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'CH100',
        MESSAGE = format('%s is append-only: %s refused', TG_TABLE_NAME, TG_OP),
        HINT = 'correct the ledger with a new entry (reversal or adjustment)';
END
$$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Checked at commit, once for the entry and once per posting, so that postings added later to
-- an existing entry are caught as well as an entry committed unbalanced or without postings.
CREATE FUNCTION check_entry_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_postings integer;
    v_unbalanced text;
BEGIN
    SELECT count(*), min(asset) FILTER (WHERE NOT balanced)
      INTO v_postings, v_unbalanced
      FROM (SELECT asset, count(*) AS n, sum(amount) = 0 AS balanced
              FROM postings WHERE entry_id = NEW.entry_id GROUP BY asset) AS per_asset;
    IF v_unbalanced IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CH101',
            MESSAGE = format('entry %s does not balance in %s', NEW.entry_id, v_unbalanced);
    END IF;
    IF TG_TABLE_NAME = 'entries'
       AND (SELECT count(*) FROM postings WHERE entry_id = NEW.entry_id) < 2 THEN
        RAISE EXCEPTION USING ERRCODE = 'CH102',
            MESSAGE = format('entry %s has fewer than two postings', NEW.entry_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();

-- Records one entry in one call: idempotency key, the member's conditional balance update, the
-- entry and its postings. The postings come from the domain's posting rules; this function
-- only checks what needs the database (balance, remaining points of a reversed entry) and
-- writes. Errors carry SQLSTATEs of class CH that the service maps to stable codes.
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
    p_content_digest text
) RETURNS TABLE (recorded_at timestamptz, member_balance_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_remaining bigint;
    v_balance bigint;
    v_now timestamptz;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        -- A concurrent twin waits here until the first commits, then fails on the key.
        INSERT INTO idempotency_keys (partner_id, idempotency_key, request_sha256, entry_id)
        VALUES (p_partner_id, p_idempotency_key, p_request_sha256, p_entry_id);
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

    v_now := ledger_now();
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
DROP TABLE idempotency_keys;
DROP TABLE postings;
DROP TABLE entries;
DROP FUNCTION check_entry_balanced;
DROP FUNCTION refuse_change;
DROP TABLE accounts;
DROP TABLE member_balances;
DROP TABLE members;
DROP TABLE partners;
DROP TABLE assets;
DROP FUNCTION ledger_now;
DROP TABLE ledger_clock;
"""


def upgrade() -> None:
    for statement in split_sql(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
