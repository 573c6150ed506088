"""Indexes for the log pages: each list's newest rows and its filters read through an index in list order.

The email log lists the newest emails first (queued_at, id), optionally of one status; the events log the newest
deliveries first (received_at, id); the feedback page reads the answers of a period (created_at). Without them
each view sorted the whole outbox, every delivery ever received, or every answer, to show 50 rows.

Revision ID: 0015_list_indexes
Revises: 0014_job_indexes
Create Date: 2026-12-07 03:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0015_list_indexes'
down_revision = '0014_job_indexes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_notifications') as batch:
        batch.create_index('ix_email_notifications_queued', ['queued_at', 'id'], unique=False)
        batch.create_index('ix_email_notifications_status_queued', ['status', 'queued_at', 'id'], unique=False)
    with op.batch_alter_table('events') as batch:
        batch.create_index('ix_events_received', ['received_at', 'id'], unique=False)
    with op.batch_alter_table('feedback') as batch:
        batch.create_index('ix_feedback_created', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('feedback') as batch:
        batch.drop_index('ix_feedback_created')
    with op.batch_alter_table('events') as batch:
        batch.drop_index('ix_events_received')
    with op.batch_alter_table('email_notifications') as batch:
        batch.drop_index('ix_email_notifications_status_queued')
        batch.drop_index('ix_email_notifications_queued')
