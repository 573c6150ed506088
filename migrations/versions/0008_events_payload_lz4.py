"""PostgreSQL compresses stored event payloads with lz4 rather than its default pglz.

Every inbound event keeps its payload as received (GitHub's run 5-30 KB), so each one is compressed
as it is stored: lz4 does that in about half the time on a webhook delivery. It applies to payloads
stored from now on; a server built without lz4 keeps pglz. SQLite has no such setting.

Revision ID: 0008_events_payload_lz4
Revises: 0007_playbooks
Create Date: 2026-12-05 16:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_events_payload_lz4'
down_revision = '0007_playbooks'
branch_labels = None
depends_on = None

HAS_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.execute(sa.text(HAS_LZ4)).scalar():
        op.execute(f"ALTER TABLE events ALTER COLUMN payload SET COMPRESSION {method}")


def upgrade():
    set_compression("lz4")


def downgrade():
    set_compression("pglz")
