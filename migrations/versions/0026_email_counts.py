"""email_counts: how many emails there are of each status and kind, kept exact by triggers.

The email log's pager counted up to 10,000 rows of email_notifications on every view, and its head's two badges
up to 1,000 each (400,000 emails at 100,000 customers). Triggers now keep the count of each status and kind as
emails are queued, change status or kind, and are deleted, by any path (the jobs' queues, delivery, the email
events, an erasure), so the log's head and its pager, unless it is narrowed to a customer, read a few rows.

The counts are split over SHARDS rows by email id (shard = id % SHARDS), so that deliveries and email events
marking different emails seldom wait on one another's row. On PostgreSQL inserts and deletes run once per statement
over its transition tables (a job queueing 80,000 weekly summaries adds to a few rows once); updates, as SQLite's
triggers, per row, and only for an email whose status or kind changed (a delivery's claim of a batch runs none).

Revision ID: 0026_email_counts
Revises: 0025_engagement_totals
Create Date: 2026-12-07 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026_email_counts'
down_revision = '0025_engagement_totals'
branch_labels = None
depends_on = None

SHARDS = 8


def add(rows: str) -> str:
    """Add to email_counts each (status, kind, shard, emails) of the query `rows`."""
    return (f"INSERT INTO email_counts (status, kind, shard, emails) {rows} "
            f"ON CONFLICT (status, kind, shard) DO UPDATE SET emails = email_counts.emails + excluded.emails")


def pg_grouped(table: str, sign: str) -> str:
    return (f"SELECT status, kind, id % {SHARDS}, {sign}count(*) FROM {table} GROUP BY status, kind, id % {SHARDS} "
            f"ORDER BY status, kind, id % {SHARDS}")


def one(row: str, sign: str) -> str:
    return add(f"SELECT {row}.status, {row}.kind, {row}.id % {SHARDS}, {sign}1 WHERE true")


# An email whose status or kind changed: out of its old count and into its new one, in one statement (the two are
# never the same row of email_counts).
MOVED = add(f"VALUES (OLD.status, OLD.kind, OLD.id % {SHARDS}, -1), (NEW.status, NEW.kind, NEW.id % {SHARDS}, 1)")


CHANGED = "(OLD.status <> NEW.status OR OLD.kind <> NEW.kind)"


def pg_triggers() -> list[tuple[str, str, str, str]]:
    """(name, event and scope, transition tables or row condition, statements) of each PostgreSQL trigger."""
    return [
        ("email_counts_insert", "INSERT", "REFERENCING NEW TABLE AS added FOR EACH STATEMENT",
         add(pg_grouped("added", ""))),
        ("email_counts_update", "UPDATE", f"FOR EACH ROW WHEN {CHANGED}", MOVED),
        ("email_counts_delete", "DELETE", "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT",
         add(pg_grouped("removed", "-"))),
    ]


def sqlite_triggers() -> list[tuple[str, str, str]]:
    """(name, event, statements) of each SQLite trigger."""
    return [
        ("email_counts_insert", "AFTER INSERT ON email_notifications", one("NEW", "")),
        ("email_counts_update", f"AFTER UPDATE OF status, kind ON email_notifications FOR EACH ROW WHEN {CHANGED}",
         MOVED),
        ("email_counts_delete", "AFTER DELETE ON email_notifications", one("OLD", "-")),
    ]


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        'email_counts',
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('shard', sa.SmallInteger(), nullable=False),
        sa.Column('emails', sa.BigInteger(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('status', 'kind', 'shard', name=op.f('pk_email_counts')),
    )
    op.execute(f"INSERT INTO email_counts (status, kind, shard, emails) SELECT status, kind, id % {SHARDS}, count(*) "
               f"FROM email_notifications GROUP BY status, kind, id % {SHARDS}")
    if dialect == "postgresql":
        for name, event, scope, statements in pg_triggers():
            op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  "
                       f"{statements};\n  RETURN NULL;\nEND $$")
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON email_notifications {scope} "
                       f"EXECUTE FUNCTION {name}()")
    else:
        for name, event, statements in sqlite_triggers():
            scope = "" if "FOR EACH ROW" in event else " FOR EACH ROW"
            op.execute(f"CREATE TRIGGER {name} {event}{scope}\nBEGIN\n  {statements};\nEND")


def downgrade():
    dialect = op.get_bind().dialect.name
    for name in [trigger[0] for trigger in (pg_triggers() if dialect == "postgresql" else sqlite_triggers())]:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON email_notifications" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('email_counts')
