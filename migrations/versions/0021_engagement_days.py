"""engagement_days: each closed day's engagement totals over every customer, kept for the weekly trends.

The analytics page's weekly trends summed every engagement row of their period (1.8 million rows over 90 days at
100,000 customers) on every view. A day long past rarely changes, so its totals are worked out once and kept in
engagement_days, with the version of the day they were counted at. engagement_day_versions holds each day's
version, moved on by triggers whenever an engagement row of a day before the database's UTC today is written,
changed or deleted, by any path (a webhook, an edit, an import, a bulk load, a customer deleted): kept totals are
used only while their version is still the day's. Today's writes, the webhooks' steady stream, touch no version
row, so they never wait on one another over it; the page counts today (and yesterday, in the first hours of
the day) live.

On PostgreSQL the triggers run once per statement over its transition tables (an import's insert of millions of
rows moves each day's version once); SQLite's run per row.

Revision ID: 0021_engagement_days
Revises: 0020_feedback_days
Create Date: 2026-12-07 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021_engagement_days'
down_revision = '0020_feedback_days'
branch_labels = None
depends_on = None

COUNTS = ("issues_tagged", "prs_generated", "prs_merged", "prs_rejected", "support_requests")
PG_TODAY = "(now() AT TIME ZONE 'UTC')::date"
SQLITE_TODAY = "date('now')"


def bump(days: str) -> str:
    """Move on the version of each day `days` (a query of one column, `day`) names."""
    return (f"INSERT INTO engagement_day_versions (day, version) SELECT day, 1 FROM ({days}) AS changed "
            f"WHERE true ON CONFLICT (day) DO UPDATE SET version = engagement_day_versions.version + 1")


def pg_triggers() -> list[tuple[str, str, str, str]]:
    """(name, event, transition tables, the days the statement wrote) of each PostgreSQL trigger."""
    past = f"date < {PG_TODAY}"
    added = f"SELECT DISTINCT date AS day FROM added WHERE {past}"
    removed = f"SELECT DISTINCT date AS day FROM removed WHERE {past}"
    return [
        ("engagement_days_insert", "INSERT", "NEW TABLE AS added", added),
        ("engagement_days_update", "UPDATE", "OLD TABLE AS removed NEW TABLE AS added",
         f"SELECT date AS day FROM added WHERE {past} UNION SELECT date FROM removed WHERE {past}"),
        ("engagement_days_delete", "DELETE", "OLD TABLE AS removed", removed),
    ]


def sqlite_triggers() -> list[tuple[str, str, str]]:
    """(name, event, statements) of each SQLite trigger."""
    def one(row: str) -> str:
        return (f"INSERT INTO engagement_day_versions (day, version) SELECT {row}.date, 1 "
                f"WHERE {row}.date < {SQLITE_TODAY} "
                f"ON CONFLICT (day) DO UPDATE SET version = engagement_day_versions.version + 1")
    return [
        ("engagement_days_insert", "AFTER INSERT ON engagement", one("NEW")),
        ("engagement_days_update", "AFTER UPDATE ON engagement", f"{one('OLD')};\n  {one('NEW')}"),
        ("engagement_days_delete", "AFTER DELETE ON engagement", one("OLD")),
    ]


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_table(
        'engagement_day_versions',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_engagement_day_versions')),
    )
    op.create_table(
        'engagement_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('customers', sa.Integer(), nullable=False, server_default='0'),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default='0') for name in COUNTS),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_engagement_days')),
    )
    if dialect == "postgresql":
        for name, event, tables, days in pg_triggers():
            # A statement that wrote no past day (every webhook delivery of today's) stops at the first check.
            op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  "
                       f"IF EXISTS ({days}) THEN\n    {bump(days)};\n  END IF;\n  RETURN NULL;\nEND $$")
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON engagement REFERENCING {tables} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    else:
        for name, event, statements in sqlite_triggers():
            op.execute(f"CREATE TRIGGER {name} {event} FOR EACH ROW\nBEGIN\n  {statements};\nEND")


def downgrade():
    dialect = op.get_bind().dialect.name
    names = [trigger[0] for trigger in (pg_triggers() if dialect == "postgresql" else sqlite_triggers())]
    for name in names:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON engagement" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('engagement_days')
    op.drop_table('engagement_day_versions')
