"""Indexes for each customer's latest row: their latest event of a type, their latest feedback.

The risk signals look up, for each customer of a batch, the latest GitHub installation event and the latest NPS
answer. With (customer_id, event_type, received_at, id) and (customer_id, id) the lookup is one descent of an
index in the wanted order; without them PostgreSQL, lacking fresh statistics, walked the newest rows of the whole
table looking for the customer's.

Revision ID: 0018_latest_per_customer_indexes
Revises: 0017_pending_task_indexes
Create Date: 2026-12-07 03:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0018_latest_per_customer_indexes'
down_revision = '0017_pending_task_indexes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('events') as batch:
        batch.create_index('ix_events_customer_type_received', ['customer_id', 'event_type', 'received_at', 'id'],
                           unique=False)
    with op.batch_alter_table('feedback') as batch:
        batch.create_index('ix_feedback_customer_latest', ['customer_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('feedback') as batch:
        batch.drop_index('ix_feedback_customer_latest')
    with op.batch_alter_table('events') as batch:
        batch.drop_index('ix_events_customer_type_received')
