"""media tokens: single-use credentials for /ws/media streams

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import agent.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media_tokens',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('loan_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', agent.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', agent.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('media_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_tokens_loan_id'), ['loan_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('media_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_tokens_loan_id'))
    op.drop_table('media_tokens')
