"""The tables, as SQLAlchemy Core sees them, for queries and for ``alembic check``.

The schema itself is made only by the migrations under ``migrations/`` (they also hold the
triggers and functions); a test keeps these definitions and the migrations in step.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
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
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

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
    Column(
        "created_at", DateTime(timezone=True), nullable=False, server_default=text("ledger_now()")
    ),
)

member_balances = Table(
    "member_balances",
    metadata,
    Column("member_id", Text, ForeignKey("members.member_id"), primary_key=True),
    Column("balance_points", BigInteger, nullable=False, server_default=text("0")),
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
    Index("entries_recorded_at", "recorded_at", "entry_id"),
    Index("entries_partner_recorded_at", "partner_id", "recorded_at", "entry_id"),
    Index(
        "entries_reversal_of",
        "reversal_of",
        postgresql_where=text("reversal_of IS NOT NULL"),
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
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
    PrimaryKeyConstraint("partner_id", "idempotency_key"),
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
