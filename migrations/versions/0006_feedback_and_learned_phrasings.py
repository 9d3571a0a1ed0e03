"""feedback and learned phrasings: what askers said of answers, and the phrasings the cache learned from them

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 08:10:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('tenant', sa.String(length=64), server_default='', nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('qhash', sa.String(length=64), nullable=False),
        sa.Column('answer_id', sa.Integer(), nullable=True),
        sa.Column('helpful', sa.Boolean(), nullable=False),
        sa.Column('offered', sa.JSON(), nullable=False),
        sa.Column('asker', sa.String(length=128), nullable=False),
        sa.Column('model', sa.String(length=255), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['answer_id'], ['answers.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_feedback_qhash', 'feedback', ['qhash'])
    op.create_table(
        'learned_phrasings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), server_default='', nullable=False),
        sa.Column('question_id', sa.Integer(), nullable=False),
        sa.Column('answer_id', sa.Integer(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('taught_by', sa.String(length=128), nullable=False),
        sa.Column('taught_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retracted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('retracted_by', sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(['question_id'], ['questions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['answer_id'], ['answers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['target_id'], ['questions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_learned_phrasings_question_tenant', 'learned_phrasings', ['question_id', 'tenant'])
    op.create_index('ix_learned_phrasings_target_id', 'learned_phrasings', ['target_id'])


def downgrade() -> None:
    op.drop_index('ix_learned_phrasings_target_id', table_name='learned_phrasings')
    op.drop_index('ix_learned_phrasings_question_tenant', table_name='learned_phrasings')
    op.drop_table('learned_phrasings')
    op.drop_index('ix_feedback_qhash', table_name='feedback')
    op.drop_table('feedback')
