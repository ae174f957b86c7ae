"""Account names and asset codes are printable ASCII without spaces.

Every account the ledger opens is named from ids that are already so (``partners_id_format``,
``members_id_format``: ``member:<id>``, ``partner:<id>:issued``, ``coalition:breakage``), and
the assets are ``PTS`` and currency codes. Holding it in the database lets closing a period read
an entry's postings as one text with a space between the fields, which asyncpg reads several
times faster than an array of rows (``storage.clearing``), and no name can hold the separator.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE accounts ADD CONSTRAINT accounts_name_format"
        " CHECK (account ~ '^[!-~]{1,200}$')"
    )
    op.execute(
        "ALTER TABLE assets ADD CONSTRAINT assets_code_format CHECK (asset ~ '^[!-~]{1,16}$')"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE assets DROP CONSTRAINT assets_code_format")
    op.execute("ALTER TABLE accounts DROP CONSTRAINT accounts_name_format")
