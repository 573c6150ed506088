"""Indexes for the customers table: its default sort (organization whatever its letter case) and cohorts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:55:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_customers_organization_lower', 'customers', [sa.text('lower(organization)'), 'id'])
    op.create_index('ix_customers_cohort', 'customers', ['cohort'])


def downgrade():
    op.drop_index('ix_customers_cohort', table_name='customers')
    op.drop_index('ix_customers_organization_lower', table_name='customers')
