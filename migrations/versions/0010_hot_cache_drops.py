"""hot cache drops: hot-cache entries an invalidation could not drop while Redis was unreachable

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09 10:00:00

An invalidation (or any change of a question's best answer) drops the question's hot-cache entries.
When Redis is unreachable then, the entries are written here, and the sweep drops them once Redis is
back (precache.recovery.retry_drops): an invalidated answer is not served from the hot cache until it
expires.
"""

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hot_cache_drops',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=512), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('hot_cache_drops')
