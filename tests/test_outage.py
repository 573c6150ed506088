"""The database going away and coming back: 503 with Retry-After, one log line, recovery without a restart."""
from __future__ import annotations

import json
import logging
import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from portal import outage as database_outage
from portal.customers import service as customers
from portal.extensions import db
from portal.integrations.signatures import sign
from portal.models import Event

from .conftest import POSTGRES, add_user, clean, csrf_token, make_app
from .faults import MovedFile, Relay
from .test_github_mapping import fixture

SECRET = "outage-secret"


@pytest.fixture
def outage(database_url, tmp_path):
    """(app, fault): an app whose database the test can cut and restore."""
    if POSTGRES:
        url = make_url(database_url)
        fault = Relay(url.host, url.port or 5432)
        app = make_app(fault.url(database_url), GITHUB_WEBHOOK_SECRET=SECRET)
    else:
        fault = MovedFile(database_url, tmp_path / "db")
        app = make_app(fault.url(), GITHUB_WEBHOOK_SECRET=SECRET)
    yield app, fault
    if fault.listener is None if POSTGRES else not fault.folder.exists():
        fault.start()
    clean(app)
    with app.app_context():
        db.engine.dispose()
    if POSTGRES:
        fault.cut()


def cut(app, fault) -> None:
    fault.cut()
    if not POSTGRES:
        with app.app_context():
            db.engine.dispose()  # open SQLite connections keep their file; a new process would not find it


def deliver(client, delivery: str | None = None):
    body = json.dumps(fixture("issues.labeled.json")).encode()
    return client.post("/webhooks/github", data=body, headers={
        "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "Content-Type": "application/json"})


def test_a_database_outage_answers_503_and_recovers_without_a_restart(outage, caplog):
    app, fault = outage
    with app.app_context():
        add_user(role="admin", email="admin@example.com")
        customers.add_customer({"email": "dev@codertocat.example", "organization": "Codertocat",
                                "github_username": "Codertocat"}, "test")
        db.session.commit()
    client = app.test_client()
    token = csrf_token(client)
    client.post("/login", data={"email": "admin@example.com", "password": "correct horse battery",
                                "csrf_token": token})
    assert client.get("/").status_code == 200
    caplog.set_level(logging.INFO)

    cut(app, fault)
    for _ in range(5):
        refused = deliver(client)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert refused.get_json()["error"] == "Service Unavailable"
    metrics = client.post("/metrics/track", json={"customer_id": "c1001", "event_type": "issue_resolution"},
                          headers={"x-api-key": "k"})
    assert metrics.status_code == 503 and metrics.get_json()["error"] == "Service Unavailable"
    page = client.get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 503 and "database is not answering" in text and page.headers["Retry-After"]
    assert "Traceback" not in text and 'aria-label="Main"' not in text
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "unavailable"

    down = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(down) == 1 and "database unavailable" in down[0].getMessage() and not down[0].exc_info

    fault.start()
    deadline, answer = time.monotonic() + 2, None
    while time.monotonic() < deadline:
        answer = deliver(client, "after-the-outage")
        if answer.status_code != 503:
            break
        time.sleep(0.05)
    assert answer.status_code == 202
    assert client.get("/readyz").status_code == 200 and client.get("/").status_code == 200
    time.sleep(database_outage.SETTLE_SECONDS)  # over once nothing has failed for that long
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert any("available again" in record.getMessage() and "8 requests" in record.getMessage()
               for record in caplog.records)
    with app.app_context():  # what was refused was not stored; what was acknowledged was
        assert db.session.scalar(select(func.count(Event.id))) == 1


def answered_after_restore(client, fault, delivery_id: str) -> int:
    """Restore the database and deliver until the answer is not 503; the 503s it took."""
    fault.start()
    deadline, refused = time.monotonic() + 2, 0
    while (answer := deliver(client, delivery_id)).status_code == 503 and time.monotonic() < deadline:
        refused += 1
        time.sleep(0.05)
    assert answer.status_code == 202
    return refused


def test_a_request_that_gets_through_while_connections_fail_is_one_outage_not_two(outage, caplog, monkeypatch):
    """Connections do not all fail at once: one not yet gone can answer between two that fail. That is one outage,
    logged in one line when it begins and one when nothing has failed for SETTLE_SECONDS."""
    app, fault = outage
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="portal.database")
    monkeypatch.setattr(database_outage, "SETTLE_SECONDS", 60)  # every step below comes well within it

    def logged() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == "portal.database"]

    cut(app, fault)
    assert deliver(client).status_code == 503
    refused = 1 + answered_after_restore(client, fault, "between-two-failures")
    cut(app, fault)
    assert deliver(client).status_code == 503
    refused += 1 + answered_after_restore(client, fault, "after-the-outage")
    assert client.get("/readyz").status_code == 200
    assert len(logged()) == 1 and logged()[0].startswith("database unavailable")

    monkeypatch.setattr(database_outage, "SETTLE_SECONDS", 0)  # now nothing has failed for long enough
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert len(logged()) == 2 and logged()[1].startswith("database available again after")
    assert logged()[1].endswith(f"; {refused} requests were answered 503")


def test_readyz_names_migrations_not_applied(database_url, databases):
    app = make_app(databases.new())
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "not applied" in ready.get_json()["checks"]["migrations"]
    with app.app_context():
        db.engine.dispose()
    upgraded = make_app(database_url)
    ready = upgraded.test_client().get("/readyz")
    with upgraded.app_context():
        db.engine.dispose()
    assert ready.status_code == 200 and ready.get_json()["checks"] == {
        "database": "ok", "migrations": "ok", "scheduler": "off in this process"}
