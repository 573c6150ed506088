"""The day's blockers and completion times in the rollups; the signal list's index in its own order.

Each snapshot keeps the customer's blocker and days to complete of that day, so the daily rollup counts the
blockers and sums the completion times as it does the bands: the dashboard no longer reads every onboarding row.
Earlier snapshots have neither (NULL). The day's completion mark is forgotten, so the next health run or page
view recalculates everyone and today's rollup gains the new measures.

The dashboard lists the customers with the most signals, then the lowest score: the index on health_current
now runs in that order (signal_count descending, score ascending), so the list is its first 50 entries rather
than a sort of the whole top group.

Revision ID: 0019_onboarding_in_rollups
Revises: 0018_latest_per_customer_indexes
Create Date: 2026-12-07 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019_onboarding_in_rollups'
down_revision = '0018_latest_per_customer_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('health_scores', sa.Column('blocker', sa.String(length=20), nullable=True))
    op.add_column('health_scores', sa.Column('days_to_complete', sa.Integer(), nullable=True))
    # An index with a descending column: dropped and created in place on both databases (as in 0014).
    op.drop_index('ix_health_current_signal_count', table_name='health_current')
    op.create_index('ix_health_current_signal_count', 'health_current',
                    [sa.text('signal_count DESC'), 'score', 'customer_id'], unique=False)
    op.execute("DELETE FROM app_settings WHERE key = 'health_completed_on'")


def downgrade():
    op.drop_index('ix_health_current_signal_count', table_name='health_current')
    op.create_index('ix_health_current_signal_count', 'health_current', ['signal_count', 'score', 'customer_id'],
                    unique=False)
    op.drop_column('health_scores', 'days_to_complete')
    op.drop_column('health_scores', 'blocker')
