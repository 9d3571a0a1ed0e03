"""index questions.canonical_id: a new answer drops the hot-cache entries of the paraphrases linked to its question

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 19:00:00
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_questions_canonical_id', 'questions', ['canonical_id'])


def downgrade() -> None:
    op.drop_index('ix_questions_canonical_id', table_name='questions')
