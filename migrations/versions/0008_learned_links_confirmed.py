"""learned links confirmed: a learned phrasing serves others only once confirmed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 21:00:00

Links learned before this revision served everyone at once; they stay in force (confirmed when
they were taught), so that upgrading changes nothing an asker is served. `precache admin learned`
lists them with who taught them, and `precache admin unlearn` retracts any of them.
"""

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('learned_phrasings') as batch:
        batch.add_column(sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE learned_phrasings SET confirmed_at = taught_at")


def downgrade() -> None:
    with op.batch_alter_table('learned_phrasings') as batch:
        batch.drop_column('confirmed_at')
