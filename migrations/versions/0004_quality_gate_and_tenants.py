"""quality gate (pinned, review), tenants of curated answers, FAQ reference answers, canonical questions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 15:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('answers') as batch:
        batch.add_column(sa.Column('tenant', sa.String(length=64), server_default='', nullable=False))
        batch.add_column(sa.Column('pinned', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('review', sa.String(length=16), nullable=True))
    with op.batch_alter_table('questions') as batch:
        batch.add_column(sa.Column('reference', sa.Text(), nullable=True))
        batch.add_column(sa.Column('canonical_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_questions_canonical_id_questions', 'questions', ['canonical_id'], ['id'],
                                 ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('questions') as batch:
        batch.drop_constraint('fk_questions_canonical_id_questions', type_='foreignkey')
        batch.drop_column('canonical_id')
        batch.drop_column('reference')
    with op.batch_alter_table('answers') as batch:
        batch.drop_column('review')
        batch.drop_column('pinned')
        batch.drop_column('tenant')
