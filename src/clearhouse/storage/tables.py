"""The tables, as SQLAlchemy Core sees them, for queries and for ``alembic check``.

The schema itself is made only by the migrations of ``clearhouse.migrations`` (they also hold
the triggers, and the functions in ``migrations/functions/``); a test keeps these definitions
and the migrations in step.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

ledger_clock = Table(
    "ledger_clock",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("offset_interval", Interval, nullable=False, server_default=text("'00:00:00'")),
    CheckConstraint("singleton", name="ledger_clock_singleton"),
)

assets = Table(
    "assets",
    metadata,
    Column("asset", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("scale", SmallInteger, nullable=False),
)

partners = Table(
    "partners",
    metadata,
    Column("partner_id", Text, primary_key=True),
    Column("legal_name", Text, nullable=False),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=text("ledger_now()")
    ),
)

members = Table(
    "members",
    metadata,
    Column("member_id", Text, primary_key=True),
    Column("enrolled_by", Text, ForeignKey("partners.partner_id")),
    Column("erased_at", DateTime(timezone=True)),
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=text("ledger_now()")
    ),
)

member_balances = Table(
    "member_balances",
    metadata,
    Column("member_id", Text, ForeignKey("members.member_id"), primary_key=True),
    Column("balance_points", BigInteger, nullable=False, server_default=text("0")),
    Column("held_points", BigInteger, nullable=False, server_default=text("0")),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("partner_id", Text, ForeignKey("partners.partner_id")),
    Column("member_id", Text, ForeignKey("members.member_id")),
)

entries = Table(
    "entries",
    metadata,
    Column("entry_id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("partner_id", Text, ForeignKey("partners.partner_id")),
    Column("member_id", Text, ForeignKey("members.member_id")),
    Column("points", BigInteger, nullable=False),
    Column("member_balance_after", BigInteger),
    Column("contract_version", Integer),
    Column("occurred_at", DateTime(timezone=True)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("reference", Text),
    Column("reversal_of", Uuid, ForeignKey("entries.entry_id")),
    Column("idempotency_key", Text),
    Column("signature_input", Text),
    Column("signature", Text),
    Column("content_digest", Text),
    Column("signature_base", Text),
    Column(
        "hold_id",
        Uuid,
        ForeignKey("holds.hold_id", deferrable=True, initially="DEFERRED"),
        unique=True,
    ),
    Index("entries_recorded_at", "recorded_at", "entry_id"),
    Index("entries_partner_recorded_at", "partner_id", "recorded_at", "entry_id"),
    Index("entries_member", "member_id", "recorded_at"),
    Index(
        "entries_reversal_of",
        "reversal_of",
        postgresql_where=text("reversal_of IS NOT NULL"),
    ),
    Index(
        "entries_operator_recorded_at",
        "recorded_at",
        postgresql_where=text("kind IN ('expiry', 'adjustment')"),
    ),
)

postings = Table(
    "postings",
    metadata,
    Column("entry_id", Uuid, ForeignKey("entries.entry_id"), nullable=False),
    Column("seq", SmallInteger, nullable=False),
    Column("account", Text, ForeignKey("accounts.account"), nullable=False),
    Column("asset", Text, ForeignKey("assets.asset"), nullable=False),
    Column("amount", Numeric(30, 6), nullable=False),
    PrimaryKeyConstraint("entry_id", "seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("partner_id", Text, ForeignKey("partners.partner_id"), nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_sha256", LargeBinary, nullable=False),
    Column("entry_id", Uuid, ForeignKey("entries.entry_id", deferrable=True, initially="DEFERRED")),
    Column(
        "member_id", Text, ForeignKey("members.member_id", deferrable=True, initially="DEFERRED")
    ),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("hold_id", Uuid, ForeignKey("holds.hold_id", deferrable=True, initially="DEFERRED")),
    PrimaryKeyConstraint("partner_id", "idempotency_key"),
)

holds = Table(
    "holds",
    metadata,
    Column("hold_id", Uuid, primary_key=True),
    Column("partner_id", Text, ForeignKey("partners.partner_id"), nullable=False),
    Column("member_id", Text, ForeignKey("members.member_id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("contract_version", Integer, nullable=False),
    Column("reference", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default=text("'open'::text")),
    Column("closed_at", DateTime(timezone=True)),
    Column("captured_points", BigInteger),
    Column(
        "capture_entry_id",
        Uuid,
        # entries.hold_id points back: created after both tables, as the migration does.
        ForeignKey(
            "entries.entry_id",
            deferrable=True,
            initially="DEFERRED",
            use_alter=True,
            name="holds_capture_entry_id_fkey",
        ),
        unique=True,
    ),
    Column("metadata", JSONB),
    Column("signature_input", Text),
    Column("signature", Text),
    Column("content_digest", Text),
    Column("signature_base", Text),
    Index(
        "holds_open_by_member", "member_id", "expires_at", postgresql_where=text("status = 'open'")
    ),
    Index(
        "holds_open_by_expiry", "expires_at", "hold_id", postgresql_where=text("status = 'open'")
    ),
    Index("holds_partner", "partner_id", "created_at", "hold_id"),
    Index("holds_partner_status", "partner_id", "status", "created_at", "hold_id"),
)

lots = Table(
    "lots",
    metadata,
    Column("lot_id", BigInteger, Identity(always=True), primary_key=True),
    Column("member_id", Text, ForeignKey("members.member_id"), nullable=False),
    Column("entry_id", Uuid, ForeignKey("entries.entry_id")),
    Column("partner_id", Text, ForeignKey("partners.partner_id")),
    Column("contract_version", Integer),
    Column("origin_lot_id", BigInteger, ForeignKey("lots.lot_id")),
    Column("points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("cohort_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Index(
        "lots_member_order",
        "member_id",
        "expires_at",
        "recorded_at",
        "entry_id",
        "lot_id",
        postgresql_where=text("remaining > 0"),
    ),
    Index("lots_entry", "entry_id"),
    Index("lots_origin", "origin_lot_id", postgresql_where=text("origin_lot_id IS NOT NULL")),
)

lot_consumptions = Table(
    "lot_consumptions",
    metadata,
    Column("entry_id", Uuid, ForeignKey("entries.entry_id"), primary_key=True),
    Column("lot_id", BigInteger, ForeignKey("lots.lot_id"), primary_key=True),
    Column("points", BigInteger, nullable=False),
    Index("lot_consumptions_lot", "lot_id"),
)

hold_events = Table(
    "hold_events",
    metadata,
    Column("hold_id", Uuid, ForeignKey("holds.hold_id"), nullable=False),
    Column("event", Text, nullable=False),
    Column(
        "final", Boolean, Computed("event <> 'authorized'::text", persisted=True), nullable=False
    ),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("released_points", BigInteger, nullable=False, server_default=text("0")),
    Column("member_balance_after", BigInteger),
    Column("member_held_after", BigInteger),
    Column("entry_id", Uuid, ForeignKey("entries.entry_id", deferrable=True, initially="DEFERRED")),
    Column("reason", Text),
    PrimaryKeyConstraint("hold_id", "final"),
)

coalition_keys = Table(
    "coalition_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("algorithm", Text, nullable=False, server_default=text("'ed25519'")),
    Column("public_key", LargeBinary, nullable=False, unique=True),
    Column(
        "not_before",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("retired_at", DateTime(timezone=True)),
    Column("purpose", Text, nullable=False, server_default=text("'statements'::text")),
    Index(
        "coalition_keys_one_current",
        "purpose",
        unique=True,
        postgresql_where=text("retired_at IS NULL"),
    ),
)

events = Table(
    "events",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column(
        "txid",
        BigInteger,
        nullable=False,
        server_default=text("((pg_current_xact_id())::text)::bigint"),
    ),
    Column("type", Text, nullable=False),
    Column("partner_id", Text, ForeignKey("partners.partner_id")),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("dedupe_key", Text, unique=True),
    Index("events_partner_order", "partner_id", "txid", "seq"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("endpoint_id", Text, primary_key=True),
    Column("partner_id", Text, ForeignKey("partners.partner_id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("secret", LargeBinary),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("deleted_at", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    Column("disabled_reason", Text),
    Column("failing_since", DateTime(timezone=True)),
    Column("idempotency_key", Text),
    UniqueConstraint("partner_id", "idempotency_key", name="webhook_endpoints_key"),
    Index("webhook_endpoints_partner", "partner_id", postgresql_where=text("deleted_at IS NULL")),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Text, ForeignKey("events.event_id"), nullable=False),
    Column("endpoint_id", Text, ForeignKey("webhook_endpoints.endpoint_id"), nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'::text")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column(
        "next_attempt_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    UniqueConstraint("event_id", "endpoint_id", name="webhook_deliveries_once"),
    Index("webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index(
        "webhook_deliveries_failed",
        "status",
        "delivery_id",
        postgresql_where=text("status = 'failed'"),
    ),
)

partner_keys = Table(
    "partner_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("partner_id", Text, ForeignKey("partners.partner_id"), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column(
        "not_before",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("not_after", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Index("partner_keys_partner", "partner_id"),
)

signature_nonces = Table(
    "signature_nonces",
    metadata,
    Column("key_id", Text, nullable=False),
    Column("nonce", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("key_id", "nonce"),
    Index("signature_nonces_expiry", "expires_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("token_sha256", LargeBinary, nullable=False, unique=True),
    Column("label", Text, nullable=False, server_default=text("''")),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

entry_metadata = Table(
    "entry_metadata",
    metadata,
    Column("entry_id", Uuid, ForeignKey("entries.entry_id"), primary_key=True),
    Column("purpose", Text, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("entry_metadata_recorded_at", "recorded_at"),
)

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("partner_id", Text, ForeignKey("partners.partner_id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("effective_from", DateTime(timezone=True), nullable=False),
    Column("sha256", Text, nullable=False),
    Column("currency", Text, ForeignKey("assets.asset"), nullable=False),
    Column("issue_rate", Numeric(20, 6), nullable=False),
    Column("redemption_rate", Numeric(20, 6), nullable=False),
    Column("fee_per_entry", Numeric(20, 6), nullable=False),
    Column("max_points_per_transaction", BigInteger, nullable=False),
    Column("max_points_per_member_per_day", BigInteger, nullable=False),
    Column("max_hold_seconds", Integer, nullable=False, server_default=text("604800")),
    Column("purposes", JSONB, nullable=False),
    Column("breakage_share_rate", Numeric(20, 6), nullable=False, server_default=text("0")),
    Column("source", Text, nullable=False),
    Column(
        "loaded_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    PrimaryKeyConstraint("partner_id", "version"),
    UniqueConstraint("partner_id", "effective_from", name="contract_versions_effective"),
)

member_daily_points = Table(
    "member_daily_points",
    metadata,
    Column("member_id", Text, nullable=False),
    Column("partner_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", Text, nullable=False),
    Column("points", BigInteger, nullable=False),
    PrimaryKeyConstraint("member_id", "partner_id", "day", "kind"),
)

member_keys = Table(
    "member_keys",
    metadata,
    Column("member_id", Text, ForeignKey("members.member_id"), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
)

member_personal_data = Table(
    "member_personal_data",
    metadata,
    Column("member_id", Text, ForeignKey("members.member_id"), nullable=False),
    Column("field", Text, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    PrimaryKeyConstraint("member_id", "field"),
)

consents = Table(
    "consents",
    metadata,
    Column("consent_id", BigInteger, Identity(always=True), primary_key=True),
    Column("member_id", Text, ForeignKey("members.member_id"), nullable=False),
    Column("partner_id", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column(
        "recorded_at", DateTime(timezone=True), nullable=False, server_default=text("ledger_now()")
    ),
    Column("recorded_by", Text, ForeignKey("partners.partner_id")),
    Column("request_id", Text),
    Index("consents_member", "member_id", "recorded_at"),
    Index("consents_member_partner", "member_id", "partner_id", postgresql_where=text("granted")),
)

member_links = Table(
    "member_links",
    metadata,
    Column("member_id", Text, ForeignKey("members.member_id"), primary_key=True),
    Column("partner_id", Text, ForeignKey("partners.partner_id"), primary_key=True),
    Column(
        "linked_at", DateTime(timezone=True), nullable=False, server_default=text("ledger_now()")
    ),
    Column("request_id", Text),
)

disclosures = Table(
    "disclosures",
    metadata,
    Column("disclosure_id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "disclosed_at", DateTime(timezone=True), nullable=False, server_default=text("ledger_now()")
    ),
    Column("partner_id", Text, ForeignKey("partners.partner_id"), nullable=False),
    Column("member_id", Text, ForeignKey("members.member_id"), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("fields", ARRAY(Text), nullable=False),
    Column("contract_version", Integer, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("request_id", Text, nullable=False),
    Index("disclosures_member", "member_id", "disclosed_at"),
    Index("disclosures_time", "disclosed_at"),
)

periods = Table(
    "periods",
    metadata,
    Column("period", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("entry_count", BigInteger, nullable=False),
    Column("tree_head", LargeBinary, nullable=False),
    Column("previous_root", LargeBinary, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("settled_at", DateTime(timezone=True)),
    Column("cohorts_sealed", Boolean, nullable=False, server_default=text("false")),
)

period_cohorts = Table(
    "period_cohorts",
    metadata,
    Column("period", Text, ForeignKey("periods.period"), nullable=False),
    Column("month", Text, nullable=False),
    Column("issued", BigInteger, nullable=False),
    Column("adjusted", BigInteger, nullable=False),
    Column("redeemed", BigInteger, nullable=False),
    Column("expired", BigInteger, nullable=False),
    Column("outstanding", BigInteger, nullable=False),
    Column("redeemed_by_age", ARRAY(BigInteger), nullable=False),
    PrimaryKeyConstraint("period", "month"),
)

statements = Table(
    "statements",
    metadata,
    Column("period", Text, ForeignKey("periods.period"), nullable=False),
    Column("party", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("sha256", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("key_id", Text, nullable=False),
    PrimaryKeyConstraint("period", "party"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_sha256", LargeBinary, primary_key=True),
    Column("token_id", Text, ForeignKey("api_tokens.token_id"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("console_sessions_expiry", "expires_at"),
)

operator_actions = Table(
    "operator_actions",
    metadata,
    Column("action_id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "acted_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    Column("token_id", Text, ForeignKey("api_tokens.token_id"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("request_id", Text, nullable=False),
    Index("operator_actions_time", "acted_at"),
)

transaction_batches = Table(
    "transaction_batches",
    metadata,
    Column("partner_id", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("atomic", Boolean, nullable=False),
    Column("items", Integer, nullable=False),
    Column("outcomes", JSONB, nullable=False),
    Column(
        "recorded_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    PrimaryKeyConstraint("partner_id", "idempotency_key"),
    ForeignKeyConstraint(
        ["partner_id", "idempotency_key"],
        ["idempotency_keys.partner_id", "idempotency_keys.idempotency_key"],
    ),
)
