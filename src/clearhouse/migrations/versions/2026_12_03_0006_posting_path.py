"""The posting path, measured and cut where the time went, every rule still in the database.

Measured against one plain statement making an entry's writes (``clearhouse bench ledger``'s
bare statement), on a scratch database, variant by variant: of the backend's time per posting,
two SQL functions called by every posting were parsed and planned again at every call, because
a SQL function that reads a table (``ledger_now``) or has a ``FROM`` (``lot_expires_at``) is
never inlined and keeps no plan: about 0.07 ms for the clock and 0.25 ms for each issue's lot
expiry, together about a sixth of ``ledger_post``. Both become PL/pgSQL, which keeps its plans;
their results are the same (the Python twin of ``lot_expires_at`` is proved equal by a test).
``ledger_post``, its parameters and its result stay as they are.

``ledger_now`` is replaced in place (``CREATE OR REPLACE``), since column defaults name it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import function_sql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACED = (("lot_expires_at", "0004"),)
"""Functions of an earlier revision this one replaces, and that revision (its downgrade loads it
again)."""
REPLACED_IN_PLACE = (("ledger_now", "0001"),)
"""Replaced with ``CREATE OR REPLACE``: column defaults depend on them, so they cannot be
dropped; the signature and result type stay."""


def _in_place(name: str, revision_of_file: str) -> str:
    return function_sql(name, revision_of_file).replace(
        "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
    )


def upgrade() -> None:
    for name, _ in REPLACED_IN_PLACE:
        op.execute(_in_place(name, revision))
    for name, _ in REPLACED:
        op.execute(f"DROP FUNCTION {name}")
        op.execute(function_sql(name, revision))


def downgrade() -> None:
    for name, earlier in REPLACED:
        op.execute(f"DROP FUNCTION {name}")
        op.execute(function_sql(name, earlier))
    for name, earlier in REPLACED_IN_PLACE:
        op.execute(_in_place(name, earlier))
