"""The SQLSTATEs of class ``CH`` that the ledger's database functions raise, and the domain
error each one is.

``ledger_post`` refuses an entry with one of these, and the ledger's triggers (``refuse_change``,
``check_entry_balanced``) refuse a change to an append-only row or an entry that does not
balance; each function is one file under ``clearhouse/migrations/functions/``
(``NAME.REVISION.sql``, the newest revision live). Every service that writes through them
turns a refusal into its domain error here, and only here: ``domain_error``. A test reads every
``ERRCODE = 'CH…'`` from the live database functions and fails on a code this map lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import asyncpg

from clearhouse.domain.errors import (
    ClearhouseError,
    ContractChanged,
    InsufficientPoints,
    LedgerInvariantBroken,
    LimitExceeded,
    MemberErased,
    NotFound,
    PeriodClosed,
    PurposeNotPermitted,
    UnknownMember,
)

SQLSTATE_INSUFFICIENT_POINTS: Final = "CH001"
SQLSTATE_UNKNOWN_MEMBER: Final = "CH002"
SQLSTATE_REVERSAL_EXCEEDS_REMAINING: Final = "CH003"
SQLSTATE_APPEND_ONLY: Final = "CH100"
SQLSTATE_ENTRY_UNBALANCED: Final = "CH101"
SQLSTATE_TOO_FEW_POSTINGS: Final = "CH102"
SQLSTATE_NO_CONTRACT: Final = "CH403"
SQLSTATE_ENTRY_NOT_FOUND: Final = "CH404"
SQLSTATE_CONTRACT_CHANGED: Final = "CH409"
SQLSTATE_MEMBER_ERASED: Final = "CH410"
SQLSTATE_PERIOD_CLOSED: Final = "CH419"
SQLSTATE_LIMIT_PER_TRANSACTION: Final = "CH422"
SQLSTATE_LIMIT_PER_DAY: Final = "CH423"

SQLSTATE_ERRORS: Final[Mapping[str, type[ClearhouseError]]] = {
    SQLSTATE_INSUFFICIENT_POINTS: InsufficientPoints,
    SQLSTATE_UNKNOWN_MEMBER: UnknownMember,
    SQLSTATE_REVERSAL_EXCEEDS_REMAINING: InsufficientPoints,
    SQLSTATE_APPEND_ONLY: LedgerInvariantBroken,
    SQLSTATE_ENTRY_UNBALANCED: LedgerInvariantBroken,
    SQLSTATE_TOO_FEW_POSTINGS: LedgerInvariantBroken,
    SQLSTATE_NO_CONTRACT: PurposeNotPermitted,
    SQLSTATE_ENTRY_NOT_FOUND: NotFound,
    SQLSTATE_CONTRACT_CHANGED: ContractChanged,
    SQLSTATE_MEMBER_ERASED: MemberErased,
    SQLSTATE_PERIOD_CLOSED: PeriodClosed,
    SQLSTATE_LIMIT_PER_TRANSACTION: LimitExceeded,
    SQLSTATE_LIMIT_PER_DAY: LimitExceeded,
}
"""Each ``CH`` SQLSTATE and the domain error it becomes; the database's message is its detail."""


def domain_error(exc: asyncpg.PostgresError) -> ClearhouseError | None:
    """The domain error that ``exc`` is, or None when it is not one of the ledger's refusals
    (then the caller lets it rise: it is unexpected)."""
    error = SQLSTATE_ERRORS.get(exc.sqlstate or "")
    if error is None:
        return None
    message = exc.args[0] if exc.args else ""
    return error(str(message))
