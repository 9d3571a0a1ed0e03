"""ask log request id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 13:07:38.596362
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ask_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('ask_log', schema=None) as batch_op:
        batch_op.drop_column('request_id')

