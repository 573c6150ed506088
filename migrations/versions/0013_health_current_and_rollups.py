"""Each customer's current health row and the daily rollups, so that no page reads a history-sized table.

health_current holds each customer's latest snapshot (the customers table and the dashboard's lists read it);
health_rollups holds each day's measures over that day's snapshots (the dashboard and the trends read them).
Snapshots gain the onboarding steps done and the risk signals raised that day, as bit masks, which the rollups
count. Existing snapshots get their steps from their onboarding percent (the steps are nearly always done in
order) and no signals; the next recalculation writes today's exactly.

Revision ID: 0013_health_current_and_rollups
Revises: 0012_customer_erasure
Create Date: 2026-12-07 00:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_health_current_and_rollups'
down_revision = '0012_customer_erasure'
branch_labels = None
depends_on = None

STEPS = ("welcome_email_sent", "account_created", "github_action_installed", "first_issue_tagged",
         "first_pr_generated")
BANDS = ("champion", "healthy", "needs_attention", "at_risk")
STAGES = ("new_signup", "onboarding", "initial_adoption", "regular_usage", "churned")


def one_of(column, values):
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade():
    # Added and dropped in place on both databases (SQLite has ADD and DROP COLUMN): no copy of the history.
    op.add_column('health_scores', sa.Column('steps', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('health_scores', sa.Column('signals', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE health_scores SET steps = CASE onboarding_percent WHEN 20 THEN 1 WHEN 40 THEN 3 "
               "WHEN 60 THEN 7 WHEN 80 THEN 15 WHEN 100 THEN 31 ELSE 0 END")

    op.create_table(
        'health_current',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('date', sa.Date(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('band', sa.String(length=20), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('signals', sa.Integer(), nullable=False),
        sa.Column('signal_count', sa.Integer(), nullable=False),
        sa.CheckConstraint(one_of('band', BANDS), name=op.f('ck_health_current_band')),
        sa.CheckConstraint(one_of('stage', STAGES), name=op.f('ck_health_current_stage')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_health_current_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_health_current')),
    )
    op.create_index('ix_health_current_score', 'health_current', ['score', 'customer_id'])
    op.create_index('ix_health_current_band_score', 'health_current', ['band', 'score', 'customer_id'])
    op.create_index('ix_health_current_stage', 'health_current', ['stage', 'customer_id'])
    op.create_index('ix_health_current_signal_count', 'health_current', ['signal_count', 'score', 'customer_id'])
    op.execute(
        "INSERT INTO health_current (customer_id, date, score, band, stage, signals, signal_count) "
        "SELECT s.customer_id, s.date, s.score, s.status, s.stage, 0, 0 FROM health_scores s "
        "JOIN (SELECT customer_id, max(date) AS date FROM health_scores GROUP BY customer_id) latest "
        "ON latest.customer_id = s.customer_id AND latest.date = s.date")

    op.create_table(
        'health_rollups',
        sa.Column('date', sa.Date(), nullable=False),
        sa.Column('measure', sa.String(length=40), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('date', 'measure', name=op.f('pk_health_rollups')),
    )
    counts = [("'customers'", "count(*)", "1 = 1"), ("'score_total'", "sum(score)", "1 = 1"),
              ("'completed'", "count(*)", "steps = 31")]
    counts += [(f"'band:{band}'", "count(*)", f"status = '{band}'") for band in BANDS]
    counts += [(f"'stage:{stage}'", "count(*)", f"stage = '{stage}'") for stage in STAGES]
    counts += [(f"'step:{step}'", "count(*)", f"(steps & {1 << index}) <> 0") for index, step in enumerate(STEPS)]
    for measure, value, where in counts:
        op.execute(f"INSERT INTO health_rollups (date, measure, value) SELECT date, {measure}, {value} "
                   f"FROM health_scores WHERE {where} GROUP BY date")


def downgrade():
    op.drop_table('health_rollups')
    op.drop_table('health_current')
    op.drop_column('health_scores', 'signals')
    op.drop_column('health_scores', 'steps')
