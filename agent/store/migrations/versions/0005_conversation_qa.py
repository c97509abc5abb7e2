"""conversation QA score and scorecard

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('qa_score', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('qa', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_qa_score'), ['qa_score'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_qa_score'))
        batch_op.drop_column('qa')
        batch_op.drop_column('qa_score')
