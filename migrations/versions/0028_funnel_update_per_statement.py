"""funnel_days: onboarding updates counted once per statement, what they change netted (PostgreSQL).

The funnel's update trigger ran per onboarding row, taking the row's eleven measures out and adding them back
(22 upserts into funnel_days for a row whose step was ticked). An import updating 100,000 onboarding rows spent
50 s there, 520 µs a row. It now runs once per statement over its transition tables: it locks the statement's
customers (as migration 0027 has every such trigger do), then writes the sum of what the old rows take out and the
new rows add, per signup day, cohort, measure and days, leaving out what nets to nothing: the measures a changed
step moves, a handful of rows, whatever the number of onboarding rows. A trigger with transition tables cannot name
columns, so it runs for any update of onboarding (a note edited), and then writes nothing. SQLite keeps its row
trigger: it runs one writer at a time, for teams of up to 10,000 customers.

Revision ID: 0028_funnel_update_per_statement
Revises: 0027_kept_counts_customer_lock
Create Date: 2026-12-07 15:10:00

"""
import functools
import importlib.util
from pathlib import Path

from alembic import op


# revision identifiers, used by Alembic.
revision = '0028_funnel_update_per_statement'
down_revision = '0027_kept_counts_customer_lock'
branch_labels = None
depends_on = None

NAME = "funnel_onboarding_update"


@functools.cache
def revision_module(filename: str):
    """An earlier migration, for the statements it wrote (loaded once)."""
    spec = importlib.util.spec_from_file_location(filename.removesuffix(".py"), Path(__file__).with_name(filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def netted() -> str:
    """What the statement's old rows (removed) take out of funnel_days and its new rows (added) put in, summed."""
    funnel = revision_module("0023_funnel_days.py")
    parts = [f"SELECT signup_day, cohort, measure, days, {sign} * counted AS counted "
             f"FROM ({funnel.contribution_rows('c', 'o', source, 'true', 'postgresql')}) AS each_one WHERE counted > 0"
             for sign, source in (("-1", "removed o JOIN customers c ON c.id = o.customer_id"),
                                  ("1", "added o JOIN customers c ON c.id = o.customer_id"))]
    return ("INSERT INTO funnel_days (signup_day, cohort, measure, days, customers) "
            f"SELECT signup_day, cohort, measure, days, sum(counted) FROM ({' UNION ALL '.join(parts)}) AS changes "
            "GROUP BY signup_day, cohort, measure, days HAVING sum(counted) <> 0 "
            "ORDER BY signup_day, cohort, measure, days "
            "ON CONFLICT (signup_day, cohort, measure, days) "
            "DO UPDATE SET customers = funnel_days.customers + excluded.customers")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    lock = revision_module("0027_kept_counts_customer_lock.py").lock
    customers = "SELECT customer_id FROM removed UNION SELECT customer_id FROM added"
    create_function = revision_module("0022_retention_days.py").create_function
    op.execute(f"DROP TRIGGER IF EXISTS {NAME} ON onboarding")
    create_function(NAME, [f"IF EXISTS (SELECT 1 FROM added) THEN {lock(customers)}; {netted()}; END IF"])
    op.execute(f"CREATE TRIGGER {NAME} AFTER UPDATE ON onboarding REFERENCING OLD TABLE AS removed NEW TABLE AS added "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {NAME}()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    kept = revision_module("0027_kept_counts_customer_lock.py")
    funnel = revision_module("0023_funnel_days.py")
    op.execute(f"DROP TRIGGER IF EXISTS {NAME} ON onboarding")
    revision_module("0022_retention_days.py").create_function(NAME, kept.locked(NAME, kept.functions()[NAME]))
    event = next(event for name, event, _, _ in funnel.triggers("postgresql") if name == NAME)
    op.execute(f"CREATE TRIGGER {NAME} {event} FOR EACH ROW EXECUTE FUNCTION {NAME}()")
