"""How the portal uses its database connections, beyond what Flask-SQLAlchemy sets up.

- A pooled connection is pinged only after sitting idle (ping_after_idle).
- On PostgreSQL, a request's transaction that only read ends with COMMIT rather than ROLLBACK
  (commit_reads): psycopg forgets every prepared statement at a ROLLBACK, so pages that only read
  would have PostgreSQL plan each of their statements again on every request.
- On PostgreSQL, the portal's connections run without JIT compilation (no_jit).
"""
from __future__ import annotations

import time

from pathlib import Path

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

from .extensions import db

IDLE_BEFORE_PING = 10.0  # seconds
WROTE = "portal_wrote"  # in a connection's info: the current transaction ran something other than a query


# Flask-Migrate's folder: the migrations this code ships.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def migrations() -> ScriptDirectory:
    """The migrations this code ships: the schema it expects its database to have (no app needed)."""
    return ScriptDirectory(str(MIGRATIONS))


def init_app(app: Flask) -> None:
    with app.app_context():
        engines = [engine for engine in db.engines.values() if engine.dialect.name != "sqlite"]
    for engine in engines:  # a server can restart under the pool, and forgets prepared statements; a file cannot
        ping_after_idle(engine)
        note_writes(engine)
        no_jit(engine)
    if engines:
        app.teardown_appcontext(commit_reads)


def ping_after_idle(engine: Engine) -> None:
    """pool_pre_ping's check, made only for a connection that sat in the pool IDLE_BEFORE_PING seconds or more: a
    ping at every checkout cost each request one more round trip to the database. A connection used moments ago
    is alive unless the server restarted in between, which that request's first statement finds: SQLAlchemy then
    discards the whole pool, so the requests after it connect afresh."""

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop("checked_in", None)
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection did not answer a ping: {error}") from error


def no_jit(engine: Engine) -> None:
    """Turn off PostgreSQL's JIT compilation for each new connection. The portal's statements read a page or a
    batch through indexes; planned without fresh statistics (after a load, or the day's writes before autovacuum
    catches up) their estimated cost passed jit_above_cost, and compiling took 0.24 s of a batch's 0.25 s."""

    @event.listens_for(engine, "connect")
    def connected(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()


def note_writes(engine: Engine) -> None:
    """Mark the connection's transaction as soon as it runs anything but a compiled query: an INSERT, UPDATE or
    DELETE, DDL, or text whose effect is unknown."""

    @event.listens_for(engine, "begin")
    def began(connection) -> None:
        connection.info.pop(WROTE, None)

    @event.listens_for(engine, "before_cursor_execute")
    def executing(connection, _cursor, _statement, _parameters, context, _executemany) -> None:
        if context is None or context.is_crud or context.isddl or context.is_text:
            connection.info[WROTE] = True


def commit_reads(error: BaseException | None) -> None:
    """At the end of a request (or any app context), COMMIT the session's transaction when it only read: for a
    reading transaction that is the same as the ROLLBACK Flask-SQLAlchemy would send, and keeps psycopg's prepared
    statements. Anything written, flushed or still pending is left to that ROLLBACK, as before."""
    session = db.session()
    if error is not None or not session.in_transaction() or session.new or session.dirty or session.deleted:
        return
    if session.connection().info.get(WROTE):
        return
    # Objects read keep their values after the context ends, as they did after the ROLLBACK.
    session.expire_on_commit = False
    session.commit()
