"""The database refusing connections while gunicorn takes deliveries from several senders at once.

gunicorn (the repository's gunicorn.conf.py, 2 workers) reaches PostgreSQL through a relay that is cut for 2
seconds in the middle of a run of signed, mixed deliveries (tests/traffic.py). A sender retries a 503 after its
Retry-After or as soon as the database is back, and anything that got no answer at once. benchmarks/reliability.py
runs the same under more load and through more faults.
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import make_url

from .. import traffic, traffic_checks
from ..conftest import POSTGRES
from ..faults import Relay
from ..gunicorn_server import Server

pytestmark = pytest.mark.skipif(
    not POSTGRES,
    reason="an outage under load needs PostgreSQL (TEST_POSTGRES_URL): the subject is gunicorn's workers losing "
           "their pooled connections to a database server and getting them back, which a SQLite file does not have")

SENDERS, EACH = 4, 80
CUT_SECONDS = 2


def test_an_outage_under_load_answers_503_loses_nothing_and_recovers_within_2_seconds(app, database_url, tmp_path):
    with app.app_context():
        seeded = traffic.seed(6)
    batches = traffic.plan(seeded, SENDERS, EACH, seed=11)
    address = make_url(database_url)
    relay = Relay(address.host, address.port or 5432)
    server = Server(relay.url(database_url), tmp_path / "gunicorn.log", traffic.SETTINGS)
    server.start()
    run = traffic.Traffic(server.port, batches, deadline_seconds=90)

    def outage():
        run.wait_for(run.distinct // 3)
        run.restored.clear()
        relay.cut()
        time.sleep(CUT_SECONDS)
        relay.start()
        run.mark("restored")
        run.restored.set()

    cutter = threading.Thread(target=outage)
    cutter.start()
    try:
        run.run()
    finally:
        cutter.join()
        server.stop()
        relay.cut()

    findings = traffic_checks.check(database_url, run, seeded)
    assert findings.problems == [], server.log.read_text()[-3000:]
    assert findings.acknowledged == findings.stored == run.distinct and findings.lost == 0
    assert run.statuses[500] == 0 and run.statuses[503] > 0, dict(run.statuses)
    assert run.first_ok["restored"] - run.marks["restored"] <= 2.0
    lines = server.outage_lines()
    assert lines["tracebacks"] == 0
    # One line per worker that met the outage when it began and one when it ended, counting every 503.
    assert 1 <= lines["unavailable"] == lines["available"] <= server.expected_workers()
    assert lines["refused"] == run.statuses[503]
