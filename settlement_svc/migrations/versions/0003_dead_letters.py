"""The outbox parks what its consumer refused for good (dead letters, service_kit/outbox.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from alembic import op

from service_kit.outbox import dead_letter_downgrade, dead_letter_upgrade

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in dead_letter_upgrade("settlement"):
        op.execute(statement)


def downgrade() -> None:
    for statement in dead_letter_downgrade("settlement"):
        op.execute(statement)
