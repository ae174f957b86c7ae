"""The baseline: the whole schema of Clearhouse, with the rules the database itself holds.

The rules of SPEC section 3 that the database can hold, it holds here:
- an entry balances per asset and has at least two postings (deferred constraint triggers,
  checked at commit, so an entry and its postings may be inserted in any order);
- entries, postings, contract versions, consents, disclosures, member links and statements are
  append-only (triggers refuse UPDATE and DELETE; TRUNCATE too for entries and postings);
- a member balance never goes below zero (CHECK);
- one entry per (partner_id, idempotency_key) (primary key of idempotency_keys);
- recorded_at comes from the ledger clock: the database clock, shifted only in sandbox mode;
- ``ledger_post`` records an entry in one call and refuses it (SQLSTATEs of class ``CH``, mapped
  in ``clearhouse.storage.sqlstates``) when its period is closed, the contract version in force
  differs from the caller's, a limit is passed, the member was erased or holds too few points;
- coalition keys are never removed and change only by retiring (``coalition_keys_guard``).

The tables: the ledger core (clock, assets, partners, members and their balances, accounts,
entries, postings, idempotency keys); partner access (signing keys, the nonce replay store,
operator and auditor tokens as SHA-256, entry metadata kept apart so retention can remove it);
contracts and members (immutable contract versions, daily points per member for the daily
limit, members' wrapped data keys and encrypted personal fields, consents, disclosures, member
links); periods and their signed statements; coalition keys with their history.

Database functions, one file per version. Each function lives in
``clearhouse/migrations/functions/NAME.REVISION.sql``, the revision being the one that creates
that version; this revision loads every function by name (``function_sql``). A later change of a
function never edits a file: it adds ``functions/NAME.NEWREVISION.sql`` and a migration whose
``upgrade`` drops the function and loads the new file and whose ``downgrade`` drops it and loads
the previous file (Alembic's "replaceable objects" recipe). The live version of a function is
its file with the newest revision; a test checks that the database runs exactly that text.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import function_sql, split_sql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The clock comes first: ledger_now (SQL, checked when created) reads it, and defaults use it.
CLOCK = r"""
CREATE TABLE ledger_clock (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT ledger_clock_singleton CHECK (singleton),
    offset_interval interval NOT NULL DEFAULT interval '0'
);
INSERT INTO ledger_clock DEFAULT VALUES;
"""

FUNCTIONS = (
    "ledger_now",
    "refuse_change",
    "check_entry_balanced",
    "period_lock_class",
    "coalition_keys_guard",
    "ledger_post",
)
"""Every database function of this revision, each loaded from ``functions/NAME.0001.sql``."""

TABLES = r"""
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
    created_at timestamptz NOT NULL DEFAULT ledger_now(),
    enrolled_by text REFERENCES partners (partner_id),
    erased_at timestamptz
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

-- signature_base: the exact RFC 9421 signature base (section 2.5) the partner's key signed, so
-- that the partner's signature on an entry verifies from the entry alone.
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
    signature_base text,
    CONSTRAINT entries_reversal_has_origin CHECK ((kind = 'reversal') = (reversal_of IS NOT NULL))
);
CREATE INDEX entries_recorded_at ON entries (recorded_at, entry_id);
CREATE INDEX entries_partner_recorded_at ON entries (partner_id, recorded_at, entry_id);
CREATE INDEX entries_reversal_of ON entries (reversal_of) WHERE reversal_of IS NOT NULL;
-- Customer service reads a member's entries with one partner; erasure leaves entries intact.
CREATE INDEX entries_member ON entries (member_id, recorded_at);

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
    member_id text REFERENCES members (member_id) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (partner_id, idempotency_key)
);

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();

-- Ed25519 public keys (32 raw bytes) of partners; several may be active at once (rotation); a
-- key counts only between not_before and not_after and until revoked_at.
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

-- Each (key_id, nonce) is accepted once while its signature could still be fresh; rows past
-- expires_at are purged. Shared by every API worker.
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

-- The version in force is the latest whose effective_from has passed on the ledger clock.
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

-- One row per member, partner, day and kind for the daily limit, so no partner-wide hot row.
CREATE TABLE member_daily_points (
    member_id text NOT NULL,
    partner_id text NOT NULL,
    day date NOT NULL,
    kind text NOT NULL,
    points bigint NOT NULL CONSTRAINT member_daily_points_not_negative CHECK (points >= 0),
    PRIMARY KEY (member_id, partner_id, day, kind)
);

-- Each member's data key, wrapped by the master key; erasure deletes it.
CREATE TABLE member_keys (
    member_id text PRIMARY KEY REFERENCES members (member_id),
    wrapped_key bytea NOT NULL
);

-- Personal fields, AES-256-GCM under the member's key, bound to the member and the field by
-- associated data.
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
CREATE INDEX consents_member_partner ON consents (member_id, partner_id) WHERE granted;
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

-- The partners a member's card was enrolled at after its first enrolment (members.enrolled_by):
-- a partner sees a member's personal fields only when the member has a relationship with it
-- (docs/data-protection.md). Facts of the member's history, kept like consents.
CREATE TABLE member_links (
    member_id text NOT NULL REFERENCES members (member_id),
    partner_id text NOT NULL REFERENCES partners (partner_id),
    linked_at timestamptz NOT NULL DEFAULT ledger_now(),
    request_id text,
    PRIMARY KEY (member_id, partner_id)
);
CREATE TRIGGER member_links_append_only BEFORE UPDATE OR DELETE ON member_links
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A row per closed month, with its ledger root (RFC 9162 tree head chained to the previous
-- period's root); a month without a row is open.
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

-- The canonical JSON of each statement, its SHA-256 and Ed25519 signature; never changed.
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

-- Every key that ever signed receipts and statements, with its validity; a key retires when
-- the next one takes over and is never removed.
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
CREATE TRIGGER coalition_keys_guarded BEFORE UPDATE OR DELETE ON coalition_keys
    FOR EACH ROW EXECUTE FUNCTION coalition_keys_guard();
"""

DOWNGRADE = r"""
DROP TABLE coalition_keys;
DROP TABLE statements;
DROP TABLE periods;
DROP TABLE member_links;
DROP TABLE disclosures;
DROP TABLE consents;
DROP TABLE member_personal_data;
DROP TABLE member_keys;
DROP TABLE member_daily_points;
DROP TABLE contract_versions;
DROP TABLE entry_metadata;
DROP TABLE api_tokens;
DROP TABLE signature_nonces;
DROP TABLE partner_keys;
DROP TABLE idempotency_keys;
DROP TABLE postings;
DROP TABLE entries;
DROP TABLE accounts;
DROP TABLE member_balances;
DROP TABLE members;
DROP TABLE partners;
DROP TABLE assets;
"""


def upgrade() -> None:
    for statement in split_sql(CLOCK):
        op.execute(statement)
    for name in FUNCTIONS:
        op.execute(function_sql(name, revision))
    for statement in split_sql(TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
    for name in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {name}")
    op.execute("DROP TABLE ledger_clock")
