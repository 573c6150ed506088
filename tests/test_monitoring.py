"""/metrics in Prometheus's format: off by default, a bearer token when on, and figures that add up across
gunicorn's workers."""
from __future__ import annotations

import http.client
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.emails import outbox
from portal.extensions import db
from portal.integrations.signatures import sign
from portal.jobs import runs
from portal.jobs.registry import Job

from .conftest import make_app
from .gunicorn_server import Server

TOKEN = "scraper-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple, float]:
    """{(name, sorted labels): value} of a scrape."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def monitored(database_url):
    app = make_app(database_url, METRICS_TOKEN=TOKEN, GITHUB_WEBHOOK_SECRET="s")
    yield app
    with app.app_context():
        db.engine.dispose()


def test_metrics_are_off_unless_a_token_is_set(client):
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_scrape_needs_the_token(monitored, header):
    response = monitored.test_client().get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "portal_" not in response.get_data(as_text=True)


def test_requests_webhooks_jobs_and_the_outbox_are_measured(monitored, app):  # app: cleans the database after
    client = monitored.test_client()
    before = samples(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    body = json.dumps({"zen": "Keep it logically awesome."}).encode()
    client.post("/webhooks/github", data=body, headers={"X-Hub-Signature-256": sign("s", body),
                "X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json"})
    client.post("/webhooks/github", data=body, headers={"X-Hub-Signature-256": "sha256=00",
                "X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json"})
    with monitored.app_context():
        outbox.queue_rows([{"kind": "team_digest", "dedupe_key": f"digest:{n}", "recipient": f"u{n}@example.com"}
                           for n in range(4)])
        db.session.commit()
        runs.run(Job("measured", "a job for the test", "never", {"year": 2000}, lambda context: {"done": 1}), "manual")

    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    after = samples(response.get_data(as_text=True))

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("portal_requests_total", endpoint="probes.healthz", method="GET", status="200") == 3
    assert grew("portal_request_duration_seconds_count", endpoint="probes.healthz", method="GET") == 3
    assert grew("portal_webhook_deliveries_total", source="github", status="200") == 1
    assert grew("portal_webhook_deliveries_total", source="github", status="401") == 1
    assert grew("portal_job_duration_seconds_count", job="measured", outcome="succeeded") == 1
    assert value(after, "portal_outbox_emails", state="queued") == 4
    assert value(after, "portal_outbox_emails", state="due") == 4
    assert value(after, "portal_database_up") == 1
    # The scrape itself is not a request the figures count.
    assert grew("portal_requests_total", endpoint="monitoring.metrics", method="GET", status="200") == 0


def test_a_scrape_adds_up_every_gunicorn_worker(database_url, tmp_path):
    server = Server(database_url, tmp_path / "gunicorn.log",
                    {"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    server.start()
    try:
        # Until both workers have answered some (each writes its own files): then the scrape must add them up.
        sent, folder = 0, tmp_path / "metrics"
        with ThreadPoolExecutor(4) as senders:
            while len(list(folder.glob("counter_*.db"))) < 2 and sent < 4000:
                assert all(senders.map(healthz, [server.port] * 20))
                sent += 20
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/metrics", headers=AUTH)
        scrape = samples(connection.getresponse().read().decode())
        connection.close()
    finally:
        server.stop()
    assert len(list(folder.glob("counter_*.db"))) == 2
    assert value(scrape, "portal_requests_total", endpoint="probes.healthz", method="GET", status="200") == sent


def healthz(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # a new connection: either worker
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    finally:
        connection.close()
