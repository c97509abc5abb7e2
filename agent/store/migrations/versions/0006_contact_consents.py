"""prior express consent per borrower, kind and number

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

from agent.store.types import UTCDateTime


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'contact_consents',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('borrower_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('given_at', UTCDateTime(), nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.Column('source', sa.String(length=64), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=True),
        sa.UniqueConstraint('borrower_id', 'kind', 'phone', name='uq_consent_borrower_kind_phone'),
    )
    op.create_index('ix_contact_consents_borrower_id', 'contact_consents', ['borrower_id'])


def downgrade() -> None:
    op.drop_index('ix_contact_consents_borrower_id', table_name='contact_consents')
    op.drop_table('contact_consents')
