"""predictions per tenant: predictive precompute's FAQ entries and links kept per tenant; who asked, in the ask log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00

`predicted_questions` holds what predictive precompute made of one tenant's misses: the tenant's
FAQ entries (`canonical_id` null) and the paraphrases linked to one of them. `ask_log.asker` says
who asked (null for asks logged before, and for `precache ask`), so that a question counts once
per asker. Entries and links made before this revision (questions.is_faq, questions.canonical_id)
stay as they are: nothing tells which tenant's misses made them.
"""

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ask_log') as batch:
        batch.add_column(sa.Column('asker', sa.String(length=128), nullable=True))
    op.create_table(
        'predicted_questions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), server_default='', nullable=False),
        sa.Column('question_id', sa.Integer(), nullable=False),
        sa.Column('canonical_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['question_id'], ['questions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['canonical_id'], ['questions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'question_id', name='uq_predicted_questions_tenant_question'),
    )
    op.create_index('ix_predicted_questions_canonical_id', 'predicted_questions', ['canonical_id'])


def downgrade() -> None:
    op.drop_index('ix_predicted_questions_canonical_id', table_name='predicted_questions')
    op.drop_table('predicted_questions')
    with op.batch_alter_table('ask_log') as batch:
        batch.drop_column('asker')
