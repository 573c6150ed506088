"""Index for the customers table's default sort: organization whatever its letter case.

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


def downgrade():
    op.drop_index('ix_customers_organization_lower', table_name='customers')
