"""feedback_days: the feedback page's NPS and CSAT counts by UTC day, cohort and owner, kept by the database.

The page counted every answer of its period (a year by default) joined to its customer, a pass that grew with the
history. The counts now come from this rollup: a row a day, cohort and owner (owner_key 0 for nobody), at most a few
thousand rows a year whatever the number of answers. Triggers keep it: on feedback written, changed or deleted (by
any path: the portal, the demo data, a bulk load), on a customer's cohort or owner changing (also when a deleted
user's customers lose their owner), and on a customer deleted (its feedback is deleted first, while the customer
still says where its answers were counted).

Revision ID: 0020_feedback_days
Revises: 0019_onboarding_in_rollups
Create Date: 2026-12-07 04:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020_feedback_days'
down_revision = '0019_onboarding_in_rollups'
branch_labels = None
depends_on = None

COUNTS = ("promoters", "passives", "detractors", "csat_answers", "csat_sum")


def day_of(column: str, dialect: str) -> str:
    return f"({column} AT TIME ZONE 'UTC')::date" if dialect == "postgresql" else f"date({column})"


def counted(row: str, sign: str) -> list[str]:
    """The COUNTS of one feedback row (`row` is NEW, OLD or a table alias), times sign."""
    return [f"{sign} * {value}" for value in (
        f"CASE WHEN {row}.nps BETWEEN 9 AND 10 THEN 1 ELSE 0 END",
        f"CASE WHEN {row}.nps BETWEEN 7 AND 8 THEN 1 ELSE 0 END",
        f"CASE WHEN {row}.nps BETWEEN 0 AND 6 THEN 1 ELSE 0 END",
        f"CASE WHEN {row}.csat IS NULL THEN 0 ELSE 1 END",
        f"COALESCE({row}.csat, 0)")]


def upsert(select: str) -> str:
    """Add the counts of `select` (day, cohort, owner_key, then COUNTS) to feedback_days."""
    added = ", ".join(f"{name} = feedback_days.{name} + excluded.{name}" for name in COUNTS)
    return (f"INSERT INTO feedback_days (day, cohort, owner_key, {', '.join(COUNTS)}) {select} "
            f"ON CONFLICT (day, cohort, owner_key) DO UPDATE SET {added}")


def one_answer(row: str, sign: str, dialect: str) -> str:
    """Count (sign 1) or uncount (sign -1) one answer where its customer is counted now."""
    return upsert(f"SELECT {day_of(f'{row}.created_at', dialect)}, c.cohort, COALESCE(c.owner_id, 0), "
                  f"{', '.join(counted(row, sign))} FROM customers c WHERE c.id = {row}.customer_id")


def customer_answers(row: str, sign: str, dialect: str) -> str:
    """Count or uncount every answer of a customer (`row`: OLD or NEW of customers) under its cohort and owner."""
    day = day_of("f.created_at", dialect)
    sums = ", ".join(f"SUM({value})" for value in counted("f", sign))
    return upsert(f"SELECT {day}, {row}.cohort, COALESCE({row}.owner_id, 0), {sums} FROM feedback f "
                  f"WHERE f.customer_id = {row}.id GROUP BY {day}")


MOVED = "OLD.cohort IS NOT NEW.cohort OR OLD.owner_id IS NOT NEW.owner_id"
PG_MOVED = "OLD.cohort IS DISTINCT FROM NEW.cohort OR OLD.owner_id IS DISTINCT FROM NEW.owner_id"
COUNTED_COLUMNS = "customer_id, created_at, nps, csat"


def triggers(dialect: str) -> list[tuple[str, str, list[str]]]:
    """(name, event, body statements) of each trigger, as each database writes them."""
    return [
        ("feedback_days_insert", "AFTER INSERT ON feedback", [one_answer("NEW", "1", dialect)]),
        ("feedback_days_delete", "AFTER DELETE ON feedback", [one_answer("OLD", "-1", dialect)]),
        ("feedback_days_update", f"AFTER UPDATE OF {COUNTED_COLUMNS} ON feedback",
         [one_answer("OLD", "-1", dialect), one_answer("NEW", "1", dialect)]),
        ("feedback_days_customer_moved", "AFTER UPDATE OF cohort, owner_id ON customers",
         [customer_answers("OLD", "-1", dialect), customer_answers("NEW", "1", dialect)]),
        ("feedback_days_customer_deleted", "BEFORE DELETE ON customers",
         ["DELETE FROM feedback WHERE customer_id = OLD.id"]),
    ]


def create_triggers(dialect: str) -> None:
    for name, event, statements in triggers(dialect):
        moved = name == "feedback_days_customer_moved"
        if dialect == "postgresql":
            body = ";\n    ".join(statements)
            condition = f"IF {PG_MOVED} THEN\n    {body};\n  END IF;" if moved else f"{body};"
            returned = "OLD" if event.startswith("BEFORE") else "NULL"
            op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  "
                       f"{condition}\n  RETURN {returned};\nEND $$")
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            when = f" WHEN {MOVED}" if moved else ""
            body = "".join(f"  {statement};\n" for statement in statements)
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW{when}\nBEGIN\n{body}END")


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        'feedback_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('cohort', sa.String(length=50), nullable=False),
        sa.Column('owner_key', sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default='0') for name in COUNTS),
        sa.PrimaryKeyConstraint('day', 'cohort', 'owner_key', name=op.f('pk_feedback_days')),
    )
    create_triggers(dialect)
    totals = ", ".join(f"SUM({value})" for value in counted("f", "1"))
    day = day_of("f.created_at", dialect)
    op.execute(f"INSERT INTO feedback_days (day, cohort, owner_key, {', '.join(COUNTS)}) "
               f"SELECT {day}, c.cohort, COALESCE(c.owner_id, 0), {totals} FROM feedback f "
               f"JOIN customers c ON c.id = f.customer_id GROUP BY {day}, c.cohort, COALESCE(c.owner_id, 0)")


def downgrade():
    dialect = op.get_bind().dialect.name
    for name, event, _ in triggers(dialect):
        table = event.rsplit(" ", 1)[1]
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('feedback_days')
