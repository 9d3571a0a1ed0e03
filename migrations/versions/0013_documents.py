"""documents: the team's documents, their passages, and which answers used them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:00:00

`precache docs import` stores documents (per tenant, by name, with the hash of their text) and their
passages with vectors. A generated answer records how it was grounded (`answers.grounding`), the
passages it used (`answers.sources`), and the documents behind them (`answer_documents`): when one
changes or goes, the answers that used it are marked `review = 'outdated'` and never served again.
"""

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sa.String(length=64), server_default='', nullable=False),
        sa.Column('name', sa.String(length=1000), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('chars', sa.Integer(), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'name', name='uq_documents_tenant_name'),
    )
    op.create_table(
        'passages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('ordinal', sa.Integer(), nullable=False),
        sa.Column('heading', sa.Text(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('model', sa.String(length=255), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_passages_document_id', 'passages', ['document_id'])
    op.create_table(
        'answer_documents',
        sa.Column('answer_id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['answer_id'], ['answers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('answer_id', 'document_id'),
    )
    op.create_index('ix_answer_documents_document_id', 'answer_documents', ['document_id'])
    with op.batch_alter_table('answers') as batch:
        batch.add_column(sa.Column('grounding', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('sources', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('answers') as batch:
        batch.drop_column('sources')
        batch.drop_column('grounding')
    op.drop_index('ix_answer_documents_document_id', table_name='answer_documents')
    op.drop_table('answer_documents')
    op.drop_index('ix_passages_document_id', table_name='passages')
    op.drop_table('passages')
    op.drop_table('documents')
