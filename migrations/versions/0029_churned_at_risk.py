"""health_rollups: the churned customers at risk, counted on their own (measure "at_risk:churned").

The dashboard counted a churned customer whose score was at risk among the customers at risk (2 of the 17 on the
demo data): a customer who has left is not at risk of leaving. The recalculation now adds the measure beside
band:at_risk, and the dashboard and its trend subtract it; this counts it for the days already rolled up, from
their snapshots.

Revision ID: 0029_churned_at_risk
Revises: 0028_funnel_update_per_statement
Create Date: 2026-12-07 15:45:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0029_churned_at_risk'
down_revision = '0028_funnel_update_per_statement'
branch_labels = None
depends_on = None

MEASURE = "at_risk:churned"


def upgrade():
    op.execute(f"DELETE FROM health_rollups WHERE measure = '{MEASURE}'")
    op.execute(f"INSERT INTO health_rollups (date, measure, value) SELECT date, '{MEASURE}', count(*) "
               "FROM health_scores WHERE status = 'at_risk' AND stage = 'churned' GROUP BY date")


def downgrade():
    op.execute(f"DELETE FROM health_rollups WHERE measure = '{MEASURE}'")
