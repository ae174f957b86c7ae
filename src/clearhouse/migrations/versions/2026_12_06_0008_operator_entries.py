"""The operator's entries of a period found by an index of their own.

Settling a period reads what expiries and adjustments moved on members from their postings;
this partial index finds those few entries without a second scan of the month. Other entries
only have the index's predicate evaluated when they are written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX entries_operator_recorded_at ON entries (recorded_at)"
        " WHERE kind IN ('expiry', 'adjustment')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX entries_operator_recorded_at")
