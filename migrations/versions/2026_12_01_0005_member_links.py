"""Member links: the partners a member's card was enrolled at after its first enrolment.

A partner sees a member's personal fields only when the member has a relationship with it
(docs/data-protection.md): enrolled through it (``members.enrolled_by`` for the first
enrolment, a row here for each later one), an entry with it, or a consent given to it. The
links are facts of the member's history, kept like consents: never changed, never deleted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from clearhouse.storage.migrate import split_sql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
CREATE TABLE member_links (
    member_id text NOT NULL REFERENCES members (member_id),
    partner_id text NOT NULL REFERENCES partners (partner_id),
    linked_at timestamptz NOT NULL DEFAULT ledger_now(),
    request_id text,
    PRIMARY KEY (member_id, partner_id)
);
CREATE TRIGGER member_links_append_only BEFORE UPDATE OR DELETE ON member_links
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE INDEX consents_member_partner ON consents (member_id, partner_id) WHERE granted;
"""

DOWNGRADE = r"""
DROP INDEX consents_member_partner;
DROP TABLE member_links;
"""


def upgrade() -> None:
    for statement in split_sql(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in split_sql(DOWNGRADE):
        op.execute(statement)
