"""Churn-risk models: each trained version with its coefficients and scaler as JSON (no pickle).

Revision ID: 0006_churn
Revises: 0005
Create Date: 2026-11-25 21:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_churn'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('churn_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('trained_by', sa.String(length=120), nullable=False),
    sa.Column('algorithm', sa.String(length=60), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('window_start', sa.Date(), nullable=False),
    sa.Column('window_end', sa.Date(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('positives', sa.Integer(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.CheckConstraint('samples >= positives AND positives >= 0', name=op.f('ck_churn_models_sample_counts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_churn_models')),
    sa.UniqueConstraint('version', name=op.f('uq_churn_models_version'))
    )


def downgrade():
    op.drop_table('churn_models')
