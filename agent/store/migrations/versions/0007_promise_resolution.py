"""promise resolution and the strategy arm of each conversation

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

from agent.store.types import ExactDecimal, UTCDateTime


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arm', sa.String(length=16), nullable=True))
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('paid_at_resolution', ExactDecimal(), nullable=True))
        batch_op.create_index('ix_promises_status', ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.drop_index('ix_promises_status')
        batch_op.drop_column('paid_at_resolution')
        batch_op.drop_column('resolved_at')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('arm')
