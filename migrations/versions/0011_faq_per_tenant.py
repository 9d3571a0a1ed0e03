"""FAQ per tenant: which questions are a tenant's FAQ, with their reference answers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 11:00:00

Questions are shared by every tenant (one row per normalised text), so `questions.is_faq` and
`questions.reference` acted for all of them: tenant A's FAQ was precomputed in every namespace and
scored with A's reference. `faq_questions` holds them per tenant. An FAQ question of before is kept
for each tenant that has a curated answer to it (the tenant that imported it), else for the default
tenant (''). The old columns stay for a downgrade and are no longer read.
"""

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'faq_questions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), server_default='', nullable=False),
        sa.Column('question_id', sa.Integer(), nullable=False),
        sa.Column('reference', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['question_id'], ['questions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'question_id', name='uq_faq_questions_tenant_question'),
    )
    op.execute(
        "INSERT INTO faq_questions (tenant, question_id, reference, created_at) "
        "SELECT DISTINCT a.tenant, q.id, q.reference, q.created_at FROM questions q "
        "JOIN answers a ON a.question_id = q.id AND a.curated WHERE q.is_faq")
    op.execute(
        "INSERT INTO faq_questions (tenant, question_id, reference, created_at) "
        "SELECT '', q.id, q.reference, q.created_at FROM questions q WHERE q.is_faq "
        "AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.question_id = q.id AND a.curated)")


def downgrade() -> None:
    op.drop_table('faq_questions')
