"""Triggers keeping retention_days, funnel_days and feedback_days lock their customers first (PostgreSQL).

Each counts a write to a customer's engagement, onboarding or feedback under the customer's signup date, cohort or
owner, read as committed: one changed by a transaction still open was missed. That transaction's own trigger
counted the customer again from the rows it could see, without the other transaction's write, which was then
counted where the customer used to be: the kept counts stayed off by that customer until recounted. The
engagement, onboarding and feedback triggers now first lock their customers (FOR NO KEY UPDATE, the lock an edit of the
customer takes, in id order), so each waits for a change of the customer to commit, and then reads it; a change of
the customer that comes second waits for the write, and then counts it. SQLite runs one writer at a time: nothing
changes there.

Revision ID: 0027_kept_counts_customer_lock
Revises: 0026_email_counts
Create Date: 2026-12-07 12:45:00

"""
import functools
import importlib.util
from pathlib import Path

from alembic import op


# revision identifiers, used by Alembic.
revision = '0027_kept_counts_customer_lock'
down_revision = '0026_email_counts'
branch_labels = None
depends_on = None


@functools.cache
def revision_module(filename: str):
    """An earlier migration, for the trigger statements it wrote (loaded once)."""
    spec = importlib.util.spec_from_file_location(filename.removesuffix(".py"), Path(__file__).with_name(filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lock(customers: str) -> str:
    """Lock the customers whose ids `customers` (a query, or a list of values) gives."""
    return f"PERFORM 1 FROM customers WHERE id IN ({customers}) ORDER BY id FOR NO KEY UPDATE"


# What each trigger function locks first: a statement trigger its transition table's customers, a row trigger its
# row's.
LOCKS = {
    "retention_engagement_insert": lock("SELECT customer_id FROM added"),
    "retention_engagement_update_loss": lock("OLD.customer_id, NEW.customer_id"),
    "retention_engagement_update_gain": lock("OLD.customer_id, NEW.customer_id"),
    "retention_engagement_delete": lock("SELECT customer_id FROM removed"),
    "funnel_onboarding_insert": lock("SELECT customer_id FROM added"),
    "funnel_onboarding_update": lock("OLD.customer_id, NEW.customer_id"),
    "funnel_onboarding_delete": lock("OLD.customer_id"),
    "feedback_days_insert": lock("NEW.customer_id"),
    "feedback_days_update": lock("OLD.customer_id, NEW.customer_id"),
    "feedback_days_delete": lock("OLD.customer_id"),
}


def functions() -> dict[str, list[str]]:
    """The statements of each function of LOCKS, as migrations 0020, 0022 and 0023 wrote them."""
    feedback = revision_module("0020_feedback_days.py")
    retention, funnel = revision_module("0022_retention_days.py"), revision_module("0023_funnel_days.py")
    found = {name: statements for name, _, statements in feedback.triggers("postgresql") if name in LOCKS}
    found.update((name, statements) for name, _, _, statements in retention.pg_engagement_triggers())
    found.update((name, statements) for name, _, _, statements in funnel.triggers("postgresql") if name in LOCKS)
    found[funnel.PG_INSERT] = [funnel.contributions("c", "o", "added o JOIN customers c ON c.id = o.customer_id",
                                                    "true", "1", "postgresql")]
    return found


def locked(name: str, statements: list[str]) -> list[str]:
    """The statements with the lock first; within the insert trigger's check for rows (an upsert that inserted
    none, as a webhook adding to today's row, locks nothing)."""
    first, *rest = statements
    if first.startswith("IF EXISTS (SELECT 1 FROM added) THEN "):
        return [first.replace(" THEN ", f" THEN {LOCKS[name]}; ", 1), *rest]
    return [LOCKS[name], *statements]


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    create_function = revision_module("0022_retention_days.py").create_function
    for name, statements in functions().items():
        create_function(name, locked(name, statements))


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    create_function = revision_module("0022_retention_days.py").create_function
    for name, statements in functions().items():
        create_function(name, statements)
