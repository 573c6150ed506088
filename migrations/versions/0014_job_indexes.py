"""Indexes for the scheduled jobs: each customer's emails by kind and time, and the outbox by recipient.

The daily re-engagement scan asks, for each customer, whether a re-engagement email was queued in the last 14
days: one probe of (customer_id, kind, queued_at) rather than reading every email the customer was ever sent.
Erasing a customer finds the emails sent to their address whatever its letter case: lower(recipient) is one probe
rather than a pass over the whole outbox for each customer erased.

Revision ID: 0014_job_indexes
Revises: 0013_health_current_and_rollups
Create Date: 2026-12-07 01:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_job_indexes'
down_revision = '0013_health_current_and_rollups'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_notifications') as batch:
        batch.create_index('ix_email_notifications_customer_kind_queued', ['customer_id', 'kind', 'queued_at'],
                           unique=False)
    # An index on an expression: created in place on both databases (a batch copy of the table could not carry it).
    op.create_index('ix_email_notifications_recipient_lower', 'email_notifications', [sa.text('lower(recipient)')],
                    unique=False)


def downgrade():
    op.drop_index('ix_email_notifications_recipient_lower', table_name='email_notifications')
    with op.batch_alter_table('email_notifications') as batch:
        batch.drop_index('ix_email_notifications_customer_kind_queued')
