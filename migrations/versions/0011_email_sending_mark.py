"""The outbox's sending mark: when a delivery run began handing an email over.

A run writes it, and commits, before it hands an email to SMTP or ConvertKit, and clears it with the
outcome; a mark left on a row whose lease ended says the run died mid-handoff, so the message may have
gone out and the next run sends it again under the same Message-ID.

Revision ID: 0011_email_sending_mark
Revises: 0010_users_session_token
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_email_sending_mark'
down_revision = '0010_users_session_token'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sending_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+), as 0004 does for this table: batch mode would copy the whole table.
    op.execute("ALTER TABLE email_notifications DROP COLUMN sending_at")
