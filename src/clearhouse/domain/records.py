"""The read models of the coalition: what services hand up to the web, the CLI and the statements.

Storage reads rows and maps them onto these; nothing above the services ever sees a database
row. Each is a frozen value: an entry as recorded, the evidence a signed request left on it, a
period as it was sealed, a partner's signing key, a coalition key, a bearer token, a disclosure
of personal data, and one row of a statement's Entries sheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias
from uuid import UUID

from clearhouse.domain.ledger import EntryKind


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a signed request leaves on the entry it created: the partner's signature, and the
    RFC 9421 signature base it signed, so that the signature verifies from the entry alone."""

    signature_input: str | None = None
    signature: str | None = None
    content_digest: str | None = None
    signature_base: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry as recorded."""

    entry_id: UUID
    kind: EntryKind
    partner_id: str | None
    member_id: str | None
    points: int
    member_balance_after: int | None
    """The member's balance right after this entry (None: the entry moved no member's points)."""
    contract_version: int | None
    occurred_at: datetime | None
    recorded_at: datetime
    """The ledger clock when the entry was recorded; entries are ordered by it, then by id."""
    reference: str | None
    reversal_of: UUID | None


@dataclass(frozen=True, slots=True)
class SealedPeriod:
    """A month as it was closed (``status`` "closed"), and settled later ("settled")."""

    period: str
    status: str
    starts_at: datetime
    ends_at: datetime
    closed_at: datetime
    entry_count: int
    tree_head: bytes
    """The Merkle tree head over the period's canonical entries."""
    previous_root: bytes
    root: bytes
    """The ledger root: the tree head chained to the previous period's root."""
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A partner's Ed25519 signing key and the window in which it may sign."""

    key_id: str
    partner_id: str
    public_key: bytes
    not_before: datetime
    not_after: datetime | None
    revoked_at: datetime | None


KeyPurpose: TypeAlias = Literal["statements", "webhooks"]
"""What a coalition key signs: receipts of responses and statements, or outgoing webhooks. Each
purpose has one current key."""


@dataclass(frozen=True, slots=True)
class CoalitionPublicKey:
    """A published coalition key; the current one of its purpose has no ``retired_at``."""

    key_id: str
    public_key: bytes
    not_before: datetime
    retired_at: datetime | None
    purpose: KeyPurpose = "statements"


@dataclass(frozen=True, slots=True)
class BearerToken:
    """An operator or auditor token as listed (its secret is never stored, only its hash)."""

    token_id: str
    role: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One disclosure of a member's personal data to a partner, as logged."""

    disclosed_at: datetime
    partner_id: str
    member_id: str
    purpose: str
    fields: list[str]
    contract_version: int
    legal_basis: str
    request_id: str


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One row of a statement's Entries sheet."""

    entry_id: str
    recorded_at: datetime
    occurred_at: datetime | None
    kind: str
    partner_id: str | None
    member_id: str | None
    points: int
    contract_version: int | None
    reference: str | None
    reversal_of: str | None


@dataclass(frozen=True, slots=True)
class SessionHolder:
    """Who a live console session stands for."""

    token_id: str
    role: str
    label: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorAction:
    action_id: int
    acted_at: datetime
    token_id: str
    label: str
    channel: str
    action: str
    subject: str
    outcome: str
    request_id: str


@dataclass(frozen=True, slots=True)
class DisclosureFilter:
    """The disclosure search: every field optional but the time range."""

    start: datetime
    end: datetime
    partner_id: str | None = None
    member_id: str | None = None
    purpose: str | None = None
    request_id: str | None = None
