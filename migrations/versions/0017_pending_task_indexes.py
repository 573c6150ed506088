"""Indexes for the tasks page: the pending tasks in list order, of everyone and by assignee.

The page lists open tasks (and snoozed ones whose snooze has run out, or every snoozed one) by due date, undated
last, then id. It sorted every pending task of its filter to show 50; these partial indexes hold only pending
tasks, in that order (PostgreSQL keeps NULLs last in an ascending index), so the first page is read from them.

Revision ID: 0017_pending_task_indexes
Revises: 0015_list_indexes
Create Date: 2026-12-07 04:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_pending_task_indexes'
down_revision = '0015_list_indexes'
branch_labels = None
depends_on = None

PENDING_TASKS = "kind = 'task' AND status IN ('open', 'snoozed')"


def upgrade():
    where = {"sqlite_where": sa.text(PENDING_TASKS), "postgresql_where": sa.text(PENDING_TASKS)}
    op.create_index('ix_interventions_pending_due', 'interventions', ['due_date', 'id'], unique=False, **where)
    op.create_index('ix_interventions_pending_assignee_due', 'interventions', ['assignee_id', 'due_date', 'id'],
                    unique=False, **where)


def downgrade():
    op.drop_index('ix_interventions_pending_assignee_due', table_name='interventions')
    op.drop_index('ix_interventions_pending_due', table_name='interventions')
