"""Playbooks, and one pending rule-made task per rule and customer, held by a partial unique index.

Revision ID: 0007_playbooks
Revises: 0006_churn
Create Date: 2026-11-25 21:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_playbooks'
down_revision = '0006_churn'
branch_labels = None
depends_on = None

PENDING_TASK = "kind = 'task' AND status IN ('open', 'snoozed') AND rule IS NOT NULL"


def upgrade():
    op.create_table('playbooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('condition', sa.JSON(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_result', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbooks')),
    sa.UniqueConstraint('name', name=op.f('uq_playbooks_name'))
    )
    # Before the index can exist, a second pending task of the same rule for a customer (the detractor
    # follow-up only looked for open ones) is cancelled; the oldest stays.
    op.execute(sa.text(
        f"UPDATE interventions SET status = 'cancelled' WHERE {PENDING_TASK} AND id NOT IN ("
        f"SELECT keep FROM (SELECT MIN(id) AS keep FROM interventions WHERE {PENDING_TASK} "
        f"GROUP BY customer_id, rule) AS oldest)"))
    op.create_index('uq_interventions_pending_rule', 'interventions', ['customer_id', 'rule'], unique=True,
                    sqlite_where=sa.text(PENDING_TASK), postgresql_where=sa.text(PENDING_TASK))


def downgrade():
    op.drop_index('uq_interventions_pending_rule', table_name='interventions')
    op.drop_table('playbooks')
