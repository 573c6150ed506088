"""The connection pool: a connection is pinged only after sitting idle, and one the server closed is replaced."""
import time

import pytest
from sqlalchemy import create_engine, text

from portal import extensions
from portal.extensions import db
from tests.conftest import POSTGRES


def test_a_connection_is_pinged_only_after_sitting_idle(tmp_path, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    extensions.ping_after_idle(engine)
    pings = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(connection) or True)
    monkeypatch.setattr(extensions, "IDLE_BEFORE_PING", 0.2)

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
    monkeypatch.setattr(extensions, "IDLE_BEFORE_PING", 0.0)
    killer = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with killer.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    killer.dispose()
    second = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    assert second != first
