"""A period's breakage cohorts are sealed with it.

The cohorts of issue months as of a period's cut-off (issued, adjusted, redeemed by age,
expired, outstanding) read every lot and every consumption the ledger ever made. They are facts
of the month once it is closed: closing computes them once, in the closing transaction, and
keeps them beside the period, so that netting and settling read a few rows instead of the
ledger's whole history each time. ``cohorts_sealed`` tells a period closed so from one closed
before this revision (whose cohorts are still computed when it is netted); the rows are never
changed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
ALTER TABLE periods ADD COLUMN cohorts_sealed boolean NOT NULL DEFAULT false;

CREATE TABLE period_cohorts (
    period text NOT NULL REFERENCES periods (period),
    month text NOT NULL CONSTRAINT period_cohorts_month_format
        CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    issued bigint NOT NULL,
    adjusted bigint NOT NULL,
    redeemed bigint NOT NULL,
    expired bigint NOT NULL,
    outstanding bigint NOT NULL,
    redeemed_by_age bigint[] NOT NULL,
    PRIMARY KEY (period, month)
);
CREATE TRIGGER period_cohorts_append_only BEFORE UPDATE OR DELETE ON period_cohorts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
"""

DOWNGRADE = r"""
DROP TABLE period_cohorts;
ALTER TABLE periods DROP COLUMN cohorts_sealed;
"""


def upgrade() -> None:
    for statement in split_sql(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
