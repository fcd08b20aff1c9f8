"""Plan versions: a plan's version number, version 1's id (the plan all versions share) and the
next version's id; one version of a plan is the latest.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE invoicing.plans
            ADD COLUMN version integer NOT NULL DEFAULT 1,
            ADD COLUMN version_of text NOT NULL DEFAULT '',
            ADD COLUMN superseded_by text NOT NULL DEFAULT ''
    """)
    op.execute(
        "CREATE UNIQUE INDEX plans_one_version_each ON invoicing.plans (version_of, version)"
        " WHERE version_of <> ''"
    )


def downgrade() -> None:
    op.execute("DROP INDEX invoicing.plans_one_version_each")
    op.execute("""
        ALTER TABLE invoicing.plans
            DROP COLUMN version, DROP COLUMN version_of, DROP COLUMN superseded_by
    """)
