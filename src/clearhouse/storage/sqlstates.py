"""The SQLSTATEs of class ``CH`` that the ledger's database functions raise, and the domain
error each one is.

``ledger_post`` refuses an entry with one of these, the hold functions (``hold_authorize``,
``hold_take``, ``hold_void``) a hold, and the ledger's triggers (``refuse_change``,
``check_entry_balanced``, ``holds_guard``, ``check_member_held``) a change to an append-only row,
an entry that does not balance or held points that are not the open holds'. Each function is
one file under ``clearhouse/migrations/functions/`` (``NAME.REVISION.sql``, the newest revision
live). Every service that writes through them
turns a refusal into its domain error here, and only here: ``domain_error``. A test reads every
``ERRCODE = 'CH…'`` from the live database functions and fails on a code this map lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import asyncpg

from clearhouse.domain.errors import (
    CaptureExceedsHold,
    ClearhouseError,
    ContractChanged,
    HoldAlreadyCaptured,
    HoldAlreadyVoided,
    HoldExpired,
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
SQLSTATE_HELD_MISMATCH: Final = "CH103"
SQLSTATE_CAPTURE_MISMATCH: Final = "CH104"
SQLSTATE_LOTS_MISMATCH: Final = "CH105"
SQLSTATE_LOT_CONSUMPTIONS_MISMATCH: Final = "CH106"
SQLSTATE_NO_CONTRACT: Final = "CH403"
SQLSTATE_ENTRY_NOT_FOUND: Final = "CH404"
SQLSTATE_CONTRACT_CHANGED: Final = "CH409"
SQLSTATE_MEMBER_ERASED: Final = "CH410"
SQLSTATE_PERIOD_CLOSED: Final = "CH419"
SQLSTATE_LIMIT_PER_TRANSACTION: Final = "CH422"
SQLSTATE_LIMIT_PER_DAY: Final = "CH423"
SQLSTATE_LIMIT_HOLD_TIME: Final = "CH424"
SQLSTATE_HOLD_CAPTURED: Final = "CH430"
SQLSTATE_HOLD_VOIDED: Final = "CH431"
SQLSTATE_HOLD_EXPIRED: Final = "CH432"
SQLSTATE_CAPTURE_EXCEEDS_HOLD: Final = "CH433"

SQLSTATE_ERRORS: Final[Mapping[str, type[ClearhouseError]]] = {
    SQLSTATE_INSUFFICIENT_POINTS: InsufficientPoints,
    SQLSTATE_UNKNOWN_MEMBER: UnknownMember,
    SQLSTATE_REVERSAL_EXCEEDS_REMAINING: InsufficientPoints,
    SQLSTATE_APPEND_ONLY: LedgerInvariantBroken,
    SQLSTATE_ENTRY_UNBALANCED: LedgerInvariantBroken,
    SQLSTATE_TOO_FEW_POSTINGS: LedgerInvariantBroken,
    SQLSTATE_HELD_MISMATCH: LedgerInvariantBroken,
    SQLSTATE_CAPTURE_MISMATCH: LedgerInvariantBroken,
    SQLSTATE_LOTS_MISMATCH: LedgerInvariantBroken,
    SQLSTATE_LOT_CONSUMPTIONS_MISMATCH: LedgerInvariantBroken,
    SQLSTATE_NO_CONTRACT: PurposeNotPermitted,
    SQLSTATE_ENTRY_NOT_FOUND: NotFound,
    SQLSTATE_CONTRACT_CHANGED: ContractChanged,
    SQLSTATE_MEMBER_ERASED: MemberErased,
    SQLSTATE_PERIOD_CLOSED: PeriodClosed,
    SQLSTATE_LIMIT_PER_TRANSACTION: LimitExceeded,
    SQLSTATE_LIMIT_PER_DAY: LimitExceeded,
    SQLSTATE_LIMIT_HOLD_TIME: LimitExceeded,
    SQLSTATE_HOLD_CAPTURED: HoldAlreadyCaptured,
    SQLSTATE_HOLD_VOIDED: HoldAlreadyVoided,
    SQLSTATE_HOLD_EXPIRED: HoldExpired,
    SQLSTATE_CAPTURE_EXCEEDS_HOLD: CaptureExceedsHold,
}
"""Each ``CH`` SQLSTATE and the domain error it becomes; the database's message is its detail."""


def domain_error(exc: asyncpg.PostgresError) -> ClearhouseError | None:
    """The domain error that ``exc`` is, or None when it is not one of the ledger's refusals
    (then the caller lets it rise: it is unexpected)."""
    message = exc.args[0] if exc.args else ""
    return refusal_error(exc.sqlstate or "", str(message))


def refusal_error(sqlstate: str, message: str) -> ClearhouseError | None:
    """The domain error of the refusal ``sqlstate`` with the database's ``message``; None when
    the SQLSTATE is none of the ledger's refusals."""
    error = SQLSTATE_ERRORS.get(sqlstate)
    return None if error is None else error(message)
