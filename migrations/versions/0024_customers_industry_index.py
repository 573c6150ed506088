"""ix_customers_industry: the industries in use are found by stepping through an index, as the cohorts are.

The analytics page lists the industries for its filter; SELECT DISTINCT read every customer (23 ms at 100,000).

Revision ID: 0024_customers_industry_index
Revises: 0023_funnel_days
Create Date: 2026-12-07 08:55:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0024_customers_industry_index'
down_revision = '0023_funnel_days'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_customers_industry', 'customers', ['industry'])


def downgrade():
    op.drop_index('ix_customers_industry', table_name='customers')
