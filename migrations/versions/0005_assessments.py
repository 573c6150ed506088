"""Assessments: the team's sentiment for a customer and band overrides with a reason and an expiry.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 21:03:50.755014

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('assessments',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('sentiment', sa.String(length=10), nullable=True),
    sa.Column('sentiment_by', sa.String(length=120), nullable=True),
    sa.Column('sentiment_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('band_override', sa.String(length=20), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=False),
    sa.Column('override_until', sa.Date(), nullable=True),
    sa.Column('override_by', sa.String(length=120), nullable=True),
    sa.Column('override_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("band_override IS NULL OR (override_until IS NOT NULL AND override_reason <> '')", name=op.f('ck_assessments_override_explained')),
    sa.CheckConstraint("band_override IS NULL OR band_override IN ('champion', 'healthy', 'needs_attention', 'at_risk')", name=op.f('ck_assessments_band_override')),
    sa.CheckConstraint("sentiment IS NULL OR sentiment IN ('positive', 'neutral', 'negative')", name=op.f('ck_assessments_sentiment')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_assessments_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_assessments'))
    )


def downgrade():
    op.drop_table('assessments')
