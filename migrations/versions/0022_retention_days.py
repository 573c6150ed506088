"""retention_days: each signup day's customers and how many of them were active in each week after signing up.

The analytics page's cohort retention looked up the first twelve weeks of engagement of every customer who signed
up in its period (23,000 customers and 70,000 engagement rows over 12 weeks at 100,000 customers) on every view.
Triggers now keep the answer as the engagement and the customers change, by any path:

- retention_weeks: the weeks (0..11 after the customer's own signup date, days 7N..7N+6) in which a customer had
  any engagement, one row per customer and week, so that a week is counted once however many days were active;
- retention_days: per signup day, how many customers signed up (week -1) and how many of them have a row in
  retention_weeks for each week.

An engagement row turning active adds its customer's week (if new); one turning inactive, moving or deleted
removes the week when no other active day of it is left. A customer added counts in its signup day; one deleted, or
whose signup date changes, takes its weeks out (and, for a new date, works them out again from its engagement).

On PostgreSQL the engagement triggers on insert and delete run once per statement over its transition tables (an
import's insert of millions of rows is one set-based pass); those on update, as SQLite's, per row, and only for a
row that turned inactive, active or moved: a webhook adding to a day's active row runs none.

Revision ID: 0022_retention_days
Revises: 0021_engagement_days
Create Date: 2026-12-07 09:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022_retention_days'
down_revision = '0021_engagement_days'
branch_labels = None
depends_on = None

COUNTS = ("issues_tagged", "prs_generated", "prs_merged", "prs_rejected", "support_requests")
WEEKS = 12
SIGNED_UP = -1  # retention_days.week of a signup day's customers


def active(row: str) -> str:
    return "(" + " OR ".join(f"{row}.{count} > 0" for count in COUNTS) + ")"


def add_to_days(pairs: str, sign: str) -> str:
    """Add `sign` to retention_days for each (customer_id, week) of `pairs`, under the customer's signup day."""
    return (f"INSERT INTO retention_days (signup_day, week, customers) "
            f"SELECT c.signup_date, p.week, {sign} * count(*) FROM {pairs} p JOIN customers c ON c.id = p.customer_id "
            f"GROUP BY c.signup_date, p.week "
            f"ON CONFLICT (signup_day, week) DO UPDATE SET customers = retention_days.customers + excluded.customers")


# -- PostgreSQL ------------------------------------------------------------------------------------------------

def pg_weeks_of(rows: str, where: str = "true") -> str:
    """(customer_id, week) of the active `rows` in their customer's first WEEKS weeks."""
    return (f"SELECT DISTINCT r.customer_id, (r.date - c.signup_date) / 7 AS week FROM {rows} r "
            f"JOIN customers c ON c.id = r.customer_id WHERE {active('r')} AND r.date >= c.signup_date "
            f"AND r.date < c.signup_date + {7 * WEEKS} AND {where}")


def pg_still_active(pair: str) -> str:
    return (f"EXISTS (SELECT 1 FROM engagement e JOIN customers c ON c.id = e.customer_id "
            f"WHERE e.customer_id = {pair}.customer_id AND {active('e')} "
            f"AND e.date >= c.signup_date + 7 * {pair}.week AND e.date < c.signup_date + 7 * {pair}.week + 7)")


def pg_gain(rows: str, where: str = "true") -> str:
    return (f"WITH gained AS (INSERT INTO retention_weeks (customer_id, week) {pg_weeks_of(rows, where)} "
            f"ON CONFLICT DO NOTHING RETURNING customer_id, week) {add_to_days('gained', '1')}")


def pg_loss(rows: str, where: str = "true") -> str:
    return (f"WITH lost AS (DELETE FROM retention_weeks w USING ({pg_weeks_of(rows, where)}) o "
            f"WHERE w.customer_id = o.customer_id AND w.week = o.week AND NOT {pg_still_active('w')} "
            f"RETURNING w.customer_id, w.week) {add_to_days('lost', '-1')}")


def pg_row(row: str) -> str:
    """Row `row` (OLD or NEW) of a row trigger as a one-row table."""
    columns = ", ".join(f"{row}.{column} AS {column}" for column in ("id", "customer_id", "date", *COUNTS))
    return f"(SELECT {columns})"


# An updated row that may have lost a week (it was active: now less active, or moved) and one that may have gained
# one (it is active: it was not, or it moved). A webhook's count added to an active row is neither, so its update
# runs no trigger function at all.
MOVED = "(NEW.date <> OLD.date OR NEW.customer_id <> OLD.customer_id)"
UPDATE_LOSS = f"{active('OLD')} AND (NOT {active('NEW')} OR {MOVED})"
UPDATE_GAIN = f"{active('NEW')} AND (NOT {active('OLD')} OR {MOVED})"


def pg_engagement_triggers() -> list[tuple[str, str, str, list[str]]]:
    """(name, event, transition tables or the row condition, statements) of each engagement trigger: inserts and
    deletes once per statement, over its rows; updates per row, only those that can change a week."""
    return [
        ("retention_engagement_insert", "INSERT", "NEW TABLE AS added",
         ["IF EXISTS (SELECT 1 FROM added) THEN " + pg_gain("added") + "; END IF"]),
        ("retention_engagement_update_loss", "UPDATE", UPDATE_LOSS, [pg_loss(pg_row("OLD"))]),
        ("retention_engagement_update_gain", "UPDATE", UPDATE_GAIN, [pg_gain(pg_row("NEW"))]),
        ("retention_engagement_delete", "DELETE", "OLD TABLE AS removed", [pg_loss("removed")]),
    ]


def pg_customer_weeks(row: str) -> str:
    """Work out again the weeks of customer `row` (NEW) from its engagement and count them."""
    return (f"WITH gained AS (INSERT INTO retention_weeks (customer_id, week) "
            f"SELECT DISTINCT e.customer_id, (e.date - {row}.signup_date) / 7 FROM engagement e "
            f"WHERE e.customer_id = {row}.id AND {active('e')} AND e.date >= {row}.signup_date "
            f"AND e.date < {row}.signup_date + {7 * WEEKS} ON CONFLICT DO NOTHING RETURNING customer_id, week) "
            f"{add_to_days('gained', '1')}")


def signed_up(row: str, sign: str) -> str:
    return (f"INSERT INTO retention_days (signup_day, week, customers) VALUES ({row}.signup_date, {SIGNED_UP}, {sign}) "
            f"ON CONFLICT (signup_day, week) DO UPDATE SET customers = retention_days.customers + excluded.customers")


def weeks_out(row: str) -> list[str]:
    """Take customer `row` (OLD)'s weeks out of its signup day's counts, then forget them."""
    return [f"UPDATE retention_days d SET customers = d.customers - w.counted FROM "
            f"(SELECT week, count(*) AS counted FROM retention_weeks WHERE customer_id = {row}.id GROUP BY week) w "
            f"WHERE d.signup_day = {row}.signup_date AND d.week = w.week",
            f"DELETE FROM retention_weeks WHERE customer_id = {row}.id"]


def customer_triggers(dialect: str) -> list[tuple[str, str, str, list[str]]]:
    """(name, event, condition, statements) of each row trigger on customers (PostgreSQL counts inserted customers
    once per statement: pg_signups)."""
    postgresql = dialect == "postgresql"
    regain = pg_customer_weeks("NEW") if postgresql else sqlite_customer_weeks("NEW")
    out = weeks_out("OLD") if postgresql else sqlite_weeks_out("OLD")
    moved = "OLD.signup_date IS DISTINCT FROM NEW.signup_date" if postgresql else "OLD.signup_date IS NOT NEW.signup_date"
    inserted = [] if postgresql else [("retention_customer_insert", "AFTER INSERT ON customers", "",
                                       [signed_up("NEW", "1")])]
    return [
        *inserted,
        ("retention_customer_delete", "BEFORE DELETE ON customers", "", [signed_up("OLD", "-1"), *out]),
        ("retention_customer_moved", "AFTER UPDATE OF signup_date ON customers", moved,
         [signed_up("OLD", "-1"), *out, signed_up("NEW", "1"), regain]),
    ]


PG_SIGNUPS = ("retention_customer_insert",
              "INSERT INTO retention_days (signup_day, week, customers) "
              f"SELECT signup_date, {SIGNED_UP}, count(*) FROM added GROUP BY signup_date "
              "ON CONFLICT (signup_day, week) DO UPDATE SET customers = retention_days.customers + excluded.customers")


# -- SQLite ----------------------------------------------------------------------------------------------------

def sqlite_days(later: str, earlier: str) -> str:
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def sqlite_week(row: str) -> str:
    return f"({sqlite_days(f'{row}.date', 'c.signup_date')} / 7)"


def sqlite_in_weeks(row: str) -> str:
    offset = sqlite_days(f"{row}.date", "c.signup_date")
    return f"{offset} >= 0 AND {offset} < {7 * WEEKS}"


def sqlite_gain(row: str) -> list[str]:
    """Count, then note, the week of `row` (NEW) if its customer had no other active day in it."""
    pair = (f"FROM customers c WHERE c.id = {row}.customer_id AND {active(row)} AND {sqlite_in_weeks(row)} "
            f"AND NOT EXISTS (SELECT 1 FROM retention_weeks w WHERE w.customer_id = {row}.customer_id "
            f"AND w.week = {sqlite_week(row)})")
    return [f"INSERT INTO retention_days (signup_day, week, customers) SELECT c.signup_date, {sqlite_week(row)}, 1 "
            f"{pair} ON CONFLICT (signup_day, week) DO UPDATE SET customers = retention_days.customers + 1",
            f"INSERT INTO retention_weeks (customer_id, week) SELECT {row}.customer_id, {sqlite_week(row)} {pair}"]


def sqlite_loss(row: str) -> list[str]:
    """Uncount, then forget, the week of `row` (OLD) if no active day of it is left."""
    left = (f"EXISTS (SELECT 1 FROM engagement e WHERE e.customer_id = {row}.customer_id AND {active('e')} "
            f"AND {sqlite_days('e.date', 'c.signup_date')} / 7 = {sqlite_week(row)} "
            f"AND {sqlite_days('e.date', 'c.signup_date')} >= 0)")
    pair = (f"FROM customers c WHERE c.id = {row}.customer_id AND {active(row)} AND {sqlite_in_weeks(row)} "
            f"AND NOT {left} AND EXISTS (SELECT 1 FROM retention_weeks w WHERE w.customer_id = {row}.customer_id "
            f"AND w.week = {sqlite_week(row)})")
    return [f"UPDATE retention_days SET customers = customers - 1 WHERE (signup_day, week) IN "
            f"(SELECT c.signup_date, {sqlite_week(row)} {pair})",
            f"DELETE FROM retention_weeks WHERE (customer_id, week) IN (SELECT {row}.customer_id, {sqlite_week(row)} {pair})"]


def sqlite_customer_weeks(row: str) -> str:
    offset = sqlite_days("e.date", f"{row}.signup_date")
    return (f"INSERT INTO retention_weeks (customer_id, week) SELECT DISTINCT e.customer_id, {offset} / 7 "
            f"FROM engagement e WHERE e.customer_id = {row}.id AND {active('e')} AND {offset} >= 0 "
            f"AND {offset} < {7 * WEEKS};\n  "
            f"INSERT INTO retention_days (signup_day, week, customers) SELECT {row}.signup_date, week, count(*) "
            f"FROM retention_weeks WHERE customer_id = {row}.id GROUP BY week "
            f"ON CONFLICT (signup_day, week) DO UPDATE SET customers = retention_days.customers + excluded.customers")


def sqlite_weeks_out(row: str) -> list[str]:
    return [f"UPDATE retention_days SET customers = customers - (SELECT count(*) FROM retention_weeks w "
            f"WHERE w.customer_id = {row}.id AND w.week = retention_days.week) "
            f"WHERE signup_day = {row}.signup_date AND week >= 0",
            f"DELETE FROM retention_weeks WHERE customer_id = {row}.id"]




def sqlite_engagement_triggers() -> list[tuple[str, str, list[str]]]:
    return [
        ("retention_engagement_insert", "AFTER INSERT ON engagement", sqlite_gain("NEW")),
        ("retention_engagement_update_loss", f"AFTER UPDATE ON engagement FOR EACH ROW WHEN {UPDATE_LOSS}",
         sqlite_loss("OLD")),
        ("retention_engagement_update_gain", f"AFTER UPDATE ON engagement FOR EACH ROW WHEN {UPDATE_GAIN}",
         sqlite_gain("NEW")),
        ("retention_engagement_delete", "AFTER DELETE ON engagement", sqlite_loss("OLD")),
    ]


# -- both ------------------------------------------------------------------------------------------------------

def create_function(name: str, statements: list[str], returned: str = "NULL") -> None:
    body = "".join(f"  {statement};\n" for statement in statements)
    op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}"
               f"  RETURN {returned};\nEND $$")


def sqlite_trigger(name: str, event: str, statements: list[str], condition: str = "") -> None:
    each = "" if "FOR EACH ROW" in event else " FOR EACH ROW"
    when = f" WHEN {condition}" if condition else ""
    body = "".join(f"  {statement};\n" for statement in statements)
    op.execute(f"CREATE TRIGGER {name} {event}{each}{when}\nBEGIN\n{body}END")


def fill(dialect: str) -> None:
    """Count what is already there."""
    op.execute("INSERT INTO retention_days (signup_day, week, customers) "
               f"SELECT signup_date, {SIGNED_UP}, count(*) FROM customers GROUP BY signup_date")
    if dialect == "postgresql":
        op.execute(f"INSERT INTO retention_weeks (customer_id, week) {pg_weeks_of('engagement')}")
    else:
        op.execute(f"INSERT INTO retention_weeks (customer_id, week) SELECT DISTINCT r.customer_id, {sqlite_week('r')} "
                   f"FROM engagement r JOIN customers c ON c.id = r.customer_id "
                   f"WHERE {active('r')} AND {sqlite_in_weeks('r')}")
    op.execute("INSERT INTO retention_days (signup_day, week, customers) SELECT c.signup_date, w.week, count(*) "
               "FROM retention_weeks w JOIN customers c ON c.id = w.customer_id GROUP BY c.signup_date, w.week")


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        'retention_weeks',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('week', sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_retention_weeks_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('customer_id', 'week', name=op.f('pk_retention_weeks')),
    )
    op.create_table(
        'retention_days',
        sa.Column('signup_day', sa.Date(), nullable=False),
        sa.Column('week', sa.SmallInteger(), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('signup_day', 'week', name=op.f('pk_retention_days')),
    )
    fill(dialect)
    if dialect == "postgresql":
        for name, event, tables, statements in pg_engagement_triggers():
            create_function(name, statements)
            if event == "UPDATE":
                op.execute(f"CREATE TRIGGER {name} AFTER UPDATE ON engagement FOR EACH ROW WHEN ({tables}) "
                           f"EXECUTE FUNCTION {name}()")
            else:
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON engagement REFERENCING {tables} "
                           f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
        name, statement = PG_SIGNUPS
        create_function(name, [statement])
        op.execute(f"CREATE TRIGGER {name} AFTER INSERT ON customers REFERENCING NEW TABLE AS added "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
        for name, event, condition, statements in customer_triggers(dialect):
            create_function(name, statements, "OLD" if event.startswith("BEFORE") else "NULL")
            when = f" WHEN ({condition})" if condition else ""
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW{when} EXECUTE FUNCTION {name}()")
    else:
        for name, event, statements in sqlite_engagement_triggers():
            sqlite_trigger(name, event, statements)
        for name, event, condition, statements in customer_triggers(dialect):
            sqlite_trigger(name, event, statements, condition)


def downgrade():
    dialect = op.get_bind().dialect.name
    triggers = [(name, "engagement") for name, *_ in
                (pg_engagement_triggers() if dialect == "postgresql" else sqlite_engagement_triggers())]
    triggers += [(name, "customers") for name, *_ in customer_triggers(dialect)]
    if dialect == "postgresql":
        triggers.append((PG_SIGNUPS[0], "customers"))
    for name, table in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('retention_days')
    op.drop_table('retention_weeks')
