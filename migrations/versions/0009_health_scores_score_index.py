"""An index of each day's snapshots by score, for the customers table sorted by health.

The table reads the day's snapshots in score order from it, checks each against the filters and
stops at its page, rather than joining every matching customer to its snapshot and sorting them all.

Revision ID: 0009_health_scores_score_index
Revises: 0008_events_payload_lz4
Create Date: 2026-12-05 16:50:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009_health_scores_score_index'
down_revision = '0008_events_payload_lz4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_health_scores_date_score', 'health_scores', ['date', 'score', 'customer_id'], unique=False)


def downgrade():
    op.drop_index('ix_health_scores_date_score', table_name='health_scores')
