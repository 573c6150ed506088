"""engagement_totals: every day's engagement totals over every customer, kept exact by triggers.

engagement_days (0021) kept a day's totals once the day was settled, six hours after it ended, and the weekly
trends summed the days since then from the engagement table on every view: today's rows, and yesterday's in the
first hours of a day (22,000 to 46,000 rows at 100,000 customers, 25 to 30 ms of the analytics page). Triggers now
add what each write to engagement changes (rows, and each count) to its day's totals, by any path (a webhook, an
edit, an import, a bulk load, a customer deleted), so no day is ever summed from the engagement table.

A day's totals are split over SHARDS rows by customer id (shard = customer_id % SHARDS): a writer holds the row of
its customers' shard until it commits, so the webhooks' steady stream into today's totals seldom waits on one
another; a reader sums a day's shards. On PostgreSQL the triggers run once per statement over its transition
tables, each statement's changes grouped and written in (day, shard) order; SQLite's run per row.

engagement_days and engagement_day_versions, with their triggers, are dropped; a downgrade creates them again
empty (0021's upgrade): their totals were counted as the page asked.

Revision ID: 0025_engagement_totals
Revises: 0024_customers_industry_index
Create Date: 2026-12-07 12:00:00

"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025_engagement_totals'
down_revision = '0024_customers_industry_index'
branch_labels = None
depends_on = None

COUNTS = ("issues_tagged", "prs_generated", "prs_merged", "prs_rejected", "support_requests")
SHARDS = 64
COLUMNS = ("customers", *COUNTS)


def changes(source: str, sign: str) -> str:
    """What each row of `source` (a table, or a row trigger's OLD or NEW) adds, times sign: day, shard, 1 and
    its counts (customers: how many customers have a row that day)."""
    counts = ", ".join(f"{sign}{source}.{count}" for count in COUNTS)
    return f"{source}.date, {source}.customer_id % {SHARDS}, {sign}1, {counts}"


def add(rows: str) -> str:
    """Add to engagement_totals each (day, shard, rows, *counts) of the query `rows`."""
    names = ", ".join(COLUMNS)
    sums = ", ".join(f"{name} = engagement_totals.{name} + excluded.{name}" for name in COLUMNS)
    return (f"INSERT INTO engagement_totals (day, shard, {names}) {rows} "
            f"ON CONFLICT (day, shard) DO UPDATE SET {sums}")


def pg_grouped(parts: list[str]) -> str:
    """The changes of `parts` (SELECTs of changes()) summed per (day, shard), in that order, those that change
    nothing left out (a webhook's count moved from one row to the same row is one)."""
    names = ", ".join(f"sum({name})" for name in COLUMNS)
    nonzero = " OR ".join(f"sum({name}) <> 0" for name in COLUMNS)
    return (f"SELECT day, shard, {names} FROM ({' UNION ALL '.join(parts)}) AS c (day, shard, {', '.join(COLUMNS)}) "
            f"GROUP BY day, shard HAVING {nonzero} ORDER BY day, shard")


def pg_triggers() -> list[tuple[str, str, str, str, str]]:
    """(name, event, transition tables, the table a statement that wrote rows has rows in, statement) of each
    PostgreSQL trigger. An upsert runs both the insert and the update trigger, one of them over no row."""
    added = f"SELECT {changes('added', '')} FROM added"
    removed = f"SELECT {changes('removed', '-')} FROM removed"
    return [
        ("engagement_totals_insert", "INSERT", "NEW TABLE AS added", "added", add(pg_grouped([added]))),
        ("engagement_totals_update", "UPDATE", "OLD TABLE AS removed NEW TABLE AS added", "added",
         add(pg_grouped([added, removed]))),
        ("engagement_totals_delete", "DELETE", "OLD TABLE AS removed", "removed", add(pg_grouped([removed]))),
    ]


def sqlite_triggers() -> list[tuple[str, str, str]]:
    """(name, event, statements) of each SQLite trigger."""
    # SQLite reads `INSERT ... SELECT ... ON CONFLICT` only with a WHERE before the ON CONFLICT.
    def one(row: str, sign: str) -> str:
        return add(f"SELECT {changes(row, sign)} WHERE true")
    return [
        ("engagement_totals_insert", "AFTER INSERT ON engagement", one("NEW", "")),
        ("engagement_totals_update", "AFTER UPDATE ON engagement", f"{one('OLD', '-')};\n  {one('NEW', '')}"),
        ("engagement_totals_delete", "AFTER DELETE ON engagement", one("OLD", "-")),
    ]


def names(dialect: str) -> list[str]:
    return [trigger[0] for trigger in (pg_triggers() if dialect == "postgresql" else sqlite_triggers())]


def drop_triggers(dialect: str, triggers: list[str]) -> None:
    for name in triggers:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON engagement" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def upgrade():
    dialect = op.get_bind().dialect.name
    drop_triggers(dialect, ["engagement_days_insert", "engagement_days_update", "engagement_days_delete"])
    op.drop_table('engagement_days')
    op.drop_table('engagement_day_versions')
    op.create_table(
        'engagement_totals',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('shard', sa.SmallInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default='0') for name in COLUMNS),
        sa.PrimaryKeyConstraint('day', 'shard', name=op.f('pk_engagement_totals')),
    )
    counts = ", ".join(f"sum({count})" for count in COUNTS)
    op.execute(f"INSERT INTO engagement_totals (day, shard, {', '.join(COLUMNS)}) "
               f"SELECT date, customer_id % {SHARDS}, count(*), {counts} FROM engagement "
               f"GROUP BY date, customer_id % {SHARDS}")
    if dialect == "postgresql":
        for name, event, tables, written, statement in pg_triggers():
            op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  "
                       f"IF EXISTS (SELECT 1 FROM {written}) THEN\n    {statement};\n  END IF;\n  RETURN NULL;\nEND $$")
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON engagement REFERENCING {tables} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    else:
        for name, event, statements in sqlite_triggers():
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW\nBEGIN\n  {statements};\nEND")


def downgrade():
    dialect = op.get_bind().dialect.name
    drop_triggers(dialect, names(dialect))
    op.drop_table('engagement_totals')
    spec = importlib.util.spec_from_file_location("engagement_days", Path(__file__).with_name("0021_engagement_days.py"))
    engagement_days = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engagement_days)
    engagement_days.upgrade()
