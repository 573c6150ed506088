"""Erasure of a customer's personal data: the GitHub login may be empty, and the time of the erasure is kept.

An erased customer keeps its row (engagement, health history and NPS scores stay as anonymous aggregates) but no
longer has a GitHub login: NULL rather than a placeholder, which a real GitHub account could one day be called.

Revision ID: 0012_customer_erasure
Revises: 0011_email_sending_mark
Create Date: 2026-12-06 21:00:00

"""
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_customer_erasure'
down_revision = '0011_email_sending_mark'
branch_labels = None
depends_on = None


# SQLite changes a column's nullability by copying the table, and that copy cannot carry indexes on expressions:
# they are dropped before it and created again after it (PostgreSQL alters the column in place).
EXPRESSION_INDEXES = [
    ('uq_customers_github_login', [sa.text('lower(github_username)')], True),
    ('ix_customers_organization_lower', [sa.text('lower(organization)'), 'id'], False),
]


@contextmanager
def customers_copied():
    """A batch of changes to customers, with the expression indexes put back after SQLite's copy."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        for name, _, _ in EXPRESSION_INDEXES:
            op.drop_index(name, table_name='customers')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        yield batch_op
    if sqlite:
        for name, columns, unique in EXPRESSION_INDEXES:
            op.create_index(name, 'customers', columns, unique=unique)


def upgrade():
    with customers_copied() as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('github_username', existing_type=sa.String(length=100), nullable=True)


def downgrade():
    # An erased customer's login comes back as a placeholder: the column cannot hold NULL any more.
    op.execute("UPDATE customers SET github_username = 'erased-c' || CAST(id + 1000 AS VARCHAR(20)) "
               "WHERE github_username IS NULL")
    with customers_copied() as batch_op:
        batch_op.alter_column('github_username', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_column('erased_at')
