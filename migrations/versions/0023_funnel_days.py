"""funnel_days: per signup day and cohort, the customers, each onboarding step done, and each gap's days.

The analytics page's funnel read every customer who signed up in its period with its onboarding row (23,000 of
each over 12 weeks at 100,000 customers) on every view. Triggers now keep, per signup day and cohort, what each
customer adds (measure: 0 the customers; 1..5 those with step 1..5 done; 6..10 how many took `days` days over gap
1..5, from signup to the first step and from each step to the next, the days being UTC calendar days), as a
customer's onboarding row is written, changed or deleted, and as a customer's signup date or cohort changes, by any
path. A customer counts once it has its onboarding row, as the funnel joins them.

Revision ID: 0023_funnel_days
Revises: 0022_retention_days
Create Date: 2026-12-07 09:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023_funnel_days'
down_revision = '0022_retention_days'
branch_labels = None
depends_on = None

STEPS = ("welcome_email_sent", "account_created", "github_action_installed", "first_issue_tagged",
         "first_pr_generated")
MEASURES = 1 + 2 * len(STEPS)


def day_of(moment: str, dialect: str) -> str:
    return f"(({moment}) AT TIME ZONE 'UTC')::date" if dialect == "postgresql" else f"date({moment})"


def days_from(later: str, earlier: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def gaps(c: str, o: str, dialect: str) -> list[str]:
    """The days of each gap of customer `c` with onboarding row `o`; NULL where a step has no time."""
    reached = [day_of(f"{o}.{step}_at", dialect) for step in STEPS]
    return [days_from(after, before, dialect) for before, after in zip([f"{c}.signup_date", *reached], reached)]


def contribution_rows(c: str, o: str, source: str, where: str, dialect: str) -> str:
    """(signup_day, cohort, measure, days, counted) of what each customer `c` with onboarding row `o` of `source`
    (a FROM clause naming both, and its condition) adds to funnel_days, a row per measure."""
    spans = gaps(c, o, dialect)
    days = " ".join(f"WHEN {6 + index} THEN {span}" for index, span in enumerate(spans))
    counted = " ".join(["WHEN 0 THEN 1"]
                       + [f"WHEN {1 + index} THEN CASE WHEN {o}.{step} THEN 1 ELSE 0 END"
                          for index, step in enumerate(STEPS)]
                       + [f"WHEN {6 + index} THEN CASE WHEN ({span}) IS NULL THEN 0 ELSE 1 END"
                          for index, span in enumerate(spans)])
    numbers = " UNION ALL ".join(f"SELECT {index} AS k" for index in range(MEASURES))
    return (f"SELECT {c}.signup_date AS signup_day, {c}.cohort AS cohort, m.k AS measure, "
            f"COALESCE(CASE m.k {days} END, 0) AS days, CASE m.k {counted} END AS counted "
            f"FROM {source} CROSS JOIN ({numbers}) m WHERE {where}")


def contributions(c: str, o: str, source: str, where: str, sign: str, dialect: str) -> str:
    """What each customer `c` with onboarding row `o` of `source` (a FROM clause naming both, and its condition)
    adds, times sign, added to funnel_days."""
    rows = contribution_rows(c, o, source, where, dialect)
    return (f"INSERT INTO funnel_days (signup_day, cohort, measure, days, customers) "
            f"SELECT signup_day, cohort, measure, days, {sign} * sum(counted) FROM ({rows}) AS each_one "
            f"WHERE counted > 0 GROUP BY signup_day, cohort, measure, days "
            f"ON CONFLICT (signup_day, cohort, measure, days) "
            f"DO UPDATE SET customers = funnel_days.customers + excluded.customers")


ONBOARDING_COLUMNS = ", ".join(column for step in STEPS for column in (step, f"{step}_at"))


def triggers(dialect: str) -> list[tuple[str, str, str, list[str]]]:
    """(name, event, condition, statements) of each row trigger."""
    postgresql = dialect == "postgresql"
    def of_onboarding(row: str) -> tuple[str, str]:
        return "customers c", f"c.id = {row}.customer_id"

    def of_customer(row: str) -> tuple[str, str]:
        return "onboarding o", f"o.customer_id = {row}.id"

    moved = ("OLD.signup_date IS DISTINCT FROM NEW.signup_date OR OLD.cohort IS DISTINCT FROM NEW.cohort"
             if postgresql else "OLD.signup_date IS NOT NEW.signup_date OR OLD.cohort IS NOT NEW.cohort")
    found = [
        ("funnel_onboarding_delete", "AFTER DELETE ON onboarding", "",
         [contributions("c", "OLD", *of_onboarding("OLD"), "-1", dialect)]),
        ("funnel_onboarding_update", f"AFTER UPDATE OF customer_id, {ONBOARDING_COLUMNS} ON onboarding", "",
         [contributions("c", "OLD", *of_onboarding("OLD"), "-1", dialect),
          contributions("c", "NEW", *of_onboarding("NEW"), "1", dialect)]),
        ("funnel_customer_moved", "AFTER UPDATE OF signup_date, cohort ON customers", moved,
         [contributions("OLD", "o", *of_customer("OLD"), "-1", dialect),
          contributions("NEW", "o", *of_customer("NEW"), "1", dialect)]),
        # Before its onboarding row goes (with the customer, by cascade), while the customer still says where it
        # was counted.
        ("funnel_customer_delete", "BEFORE DELETE ON customers", "", ["DELETE FROM onboarding WHERE customer_id = OLD.id"]),
    ]
    if not postgresql:
        found.insert(0, ("funnel_onboarding_insert", "AFTER INSERT ON onboarding", "",
                         [contributions("c", "NEW", *of_onboarding("NEW"), "1", dialect)]))
    return found


PG_INSERT = "funnel_onboarding_insert"


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        'funnel_days',
        sa.Column('signup_day', sa.Date(), nullable=False),
        sa.Column('cohort', sa.String(length=50), nullable=False),
        sa.Column('measure', sa.SmallInteger(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('signup_day', 'cohort', 'measure', 'days', name=op.f('pk_funnel_days')),
    )
    op.execute(contributions("c", "o", "customers c JOIN onboarding o ON o.customer_id = c.id", "true", "1", dialect))
    for name, event, condition, statements in triggers(dialect):
        body = "".join(f"  {statement};\n" for statement in statements)
        if dialect == "postgresql":
            returned = "OLD" if event.startswith("BEFORE") else "NULL"
            op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}"
                       f"  RETURN {returned};\nEND $$")
            when = f" WHEN ({condition})" if condition else ""
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW{when} EXECUTE FUNCTION {name}()")
        else:
            when = f" WHEN {condition}" if condition else ""
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW{when}\nBEGIN\n{body}END")
    if dialect == "postgresql":
        statement = contributions("c", "o", "added o JOIN customers c ON c.id = o.customer_id", "true", "1", dialect)
        op.execute(f"CREATE OR REPLACE FUNCTION {PG_INSERT}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                   f"  {statement};\n  RETURN NULL;\nEND $$")
        op.execute(f"CREATE TRIGGER {PG_INSERT} AFTER INSERT ON onboarding REFERENCING NEW TABLE AS added "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_INSERT}()")


def downgrade():
    dialect = op.get_bind().dialect.name
    names = [(name, event.split(" ON ")[-1]) for name, event, _, _ in triggers(dialect)]
    if dialect == "postgresql":
        names.append((PG_INSERT, "onboarding"))
    for name, table in names:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('funnel_days')
