"""One runner per job across processes and hosts: the lock lives in the database, never in memory.

PostgreSQL: a session advisory lock on a connection kept for the whole run; if the process dies, the server
drops the connection and the lock with it. Elsewhere (SQLite): a lease row in job_leases, taken by one atomic
upsert that only overwrites an expired lease, so a crashed holder frees it after the job's timeout.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import Engine, delete, select, text

from ..models import JobLease
from ..sql import insert_for


def advisory_key(job: str) -> int:
    """A stable signed 64-bit key per job name (Python's hash() differs between processes)."""
    digest = hashlib.sha256(f"portal.jobs:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    def __init__(self, engine: Engine, job: str):
        self.engine, self.key = engine, advisory_key(job)
        self.connection = None

    def acquire(self) -> bool:
        connection = self.engine.connect()
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        connection.commit()
        if not taken:
            connection.close()
            return False
        self.connection = connection
        return True

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            connection.commit()
            connection.close()
        except Exception:
            # A lock that could not be released must not go back to the pool with its connection.
            connection.invalidate()
            raise


class LeaseLock:
    def __init__(self, engine: Engine, job: str, holder: str, ttl: dt.timedelta, now: dt.datetime):
        self.engine, self.job, self.ttl, self.now = engine, job, ttl, now
        # Unique per attempt: a manual run and a scheduled one can come from the same process.
        self.holder = f"{holder}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        table = JobLease.__table__
        statement = insert_for(table, self.engine.dialect.name).values(job=self.job, holder=self.holder, expires_at=self.now + self.ttl)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.job],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=table.c.expires_at < self.now,
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
            holder = connection.execute(select(table.c.holder).where(table.c.job == self.job)).scalar()
        return holder == self.holder

    def release(self) -> None:
        table = JobLease.__table__
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.job == self.job, table.c.holder == self.holder))


def lock_for(engine: Engine, job: str, holder: str, ttl: dt.timedelta, now: dt.datetime) -> AdvisoryLock | LeaseLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, job)
    return LeaseLock(engine, job, holder, ttl, now)
