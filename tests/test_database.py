"""Connections: pinged only after sitting idle, replaced when the server closed them; reading requests commit."""
import time

import pytest
from sqlalchemy import create_engine, event, func, insert, select, text

from portal import database
from portal.extensions import db
from portal.models import User
from tests.conftest import POSTGRES


def test_a_connection_is_pinged_only_after_sitting_idle(tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    database.ping_after_idle(engine)
    pings = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or True)
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", 0.2)

    def use() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    use()
    use()
    assert pings == []  # a new connection, then one used moments ago
    time.sleep(0.3)
    use()
    assert len(pings) == 1
    engine.dispose()


@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_POSTGRES_URL): a server that closes a connection")
def test_a_pooled_connection_the_server_closed_is_replaced(ctx, monkeypatch):
    first = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    db.session.remove()  # back to the pool
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", 0.0)
    killer = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with killer.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    killer.dispose()
    second = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    assert second != first


def transaction_ends(app) -> list[str]:
    """How each transaction on the app's engine ends from now on: "commit" or "rollback"."""
    ends: list[str] = []
    with app.app_context():
        event.listen(db.engine, "commit", lambda _connection: ends.append("commit"))
        event.listen(db.engine, "rollback", lambda _connection: ends.append("rollback"))
    return ends


@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_POSTGRES_URL): psycopg's prepared statements")
def test_a_request_that_only_read_commits_and_one_that_wrote_without_committing_rolls_back(app):
    @app.get("/test/read")
    def read():
        return str(db.session.scalar(select(func.count()).select_from(User)))

    @app.get("/test/write-and-leave")
    def write_and_leave():
        db.session.execute(insert(User.__table__).values(email="left@example.com", name="Left", password_hash="x",
                                                         role="viewer", active=True))
        return "written, not committed"

    @app.get("/test/pending")
    def pending():
        db.session.add(User(email="pending@example.com", name="Pending", password_hash="x", role="viewer"))
        with db.session.no_autoflush:
            return f"added, not flushed, {db.session.scalar(select(func.count()).select_from(User))} stored"

    ends = transaction_ends(app)
    client = app.test_client()
    assert client.get("/test/read").status_code == 200 and ends == ["commit"]
    assert client.get("/test/write-and-leave").status_code == 200 and ends[1:] == ["rollback"]
    assert client.get("/test/pending").status_code == 200 and ends[2:] == ["rollback"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def sync_setting(connection) -> str:
    if connection.dialect.name == "postgresql":
        return connection.exec_driver_sql("SHOW synchronous_commit").scalar()
    return {0: "off", 1: "normal", 2: "full", 3: "extra"}[connection.exec_driver_sql("PRAGMA synchronous").scalar()]


def test_an_unsynced_autocommit_connection_commits_at_once_and_goes_back_to_the_pool_synced(ctx):
    from portal.sql import unsynced_autocommit

    db.session.remove()
    db.engine.dispose()  # an empty pool: the connection below is the one the next checkout gets
    with unsynced_autocommit() as connection:
        raw = connection.connection.dbapi_connection
        assert sync_setting(connection) in ("off", "normal")
        connection.execute(insert(User.__table__).values(email="quick@example.com", name="Quick", password_hash="x",
                                                         role="viewer", active=True))
        with db.engine.connect() as other:  # committed already, without a COMMIT
            assert other.scalar(select(func.count()).select_from(User)) == 1
    with db.engine.connect() as first, db.engine.connect() as second:  # the two pooled connections
        [again] = [each for each in (first, second) if each.connection.dbapi_connection is raw]
        assert sync_setting(again) in ("on", "full")


@pytest.mark.skipif(not POSTGRES, reason="JIT is PostgreSQL's (TEST_POSTGRES_URL)")
def test_postgresql_connections_run_without_jit(ctx):
    db.engine.dispose()
    with db.engine.connect() as first, db.engine.connect() as second:
        assert [connection.exec_driver_sql("SHOW jit").scalar() for connection in (first, second)] == ["off", "off"]
