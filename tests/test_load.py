"""The GitHub webhook under load and through a crash: gunicorn (the repo's gunicorn.conf.py, 2 workers)
in a subprocess on PostgreSQL, fed by threads of signed `issues` labeled deliveries.

Several customers, one of them hot, so workers race on the same engagement and health rows as well
as on different ones. A sender counts a delivery as acknowledged only on a 2xx answer; after no
answer it retries the same delivery once the server is back, as GitHub's redelivery would.
"""
from __future__ import annotations

import collections
import datetime as dt
import http.client
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from portal.customers import service as customers
from portal.extensions import db
from portal.integrations.signatures import sign
from portal.models import Customer, Engagement, Event
from tests.conftest import POSTGRES
from tests.gunicorn_server import Server
from tests.test_github_mapping import fixture

pytestmark = pytest.mark.skipif(
    not POSTGRES,
    reason="load and crash tests need PostgreSQL (TEST_POSTGRES_URL): the subject is several gunicorn workers "
           "racing on row locks, which SQLite's single writer file does not have")

SECRET = "load-test-secret"
LOGINS = ("hot-org", "warm-org", "cool-org", "mild-org", "cold-org")
WEIGHTS = (3, 2, 2, 2, 1)  # three in ten deliveries go to one customer: the row-lock contention case
DAYS = (dt.date(2026, 11, 24), dt.date(2026, 11, 25))
SENDERS = 8


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    login: str
    day: dt.date


def bodies() -> dict[tuple[str, dt.date], tuple[bytes, str]]:
    """A signed `issues` labeled body for each customer and day: the fixture, owned by that login."""
    signed = {}
    for login in LOGINS:
        for day in DAYS:
            payload = fixture("issues.labeled.json")
            payload["label"]["name"] = "rsolv"
            payload["repository"]["owner"]["login"] = login
            payload["issue"]["updated_at"] = f"{day.isoformat()}T12:00:00Z"
            body = json.dumps(payload).encode()
            signed[login, day] = body, sign(SECRET, body)
    return signed


def plan(each: int, resends: int, seed: int) -> list[list[Delivery]]:
    """Each sender's deliveries in order; `resends` of them repeat one the same sender sent before."""
    rng = random.Random(seed)
    batches = []
    for _ in range(SENDERS):
        again = set(rng.sample(range(1, each), resends))
        batch: list[Delivery] = []
        for position in range(each):
            if position in again:
                batch.append(rng.choice(batch))
            else:
                login = rng.choices(LOGINS, WEIGHTS)[0]
                batch.append(Delivery(str(uuid.uuid4()), login, rng.choice(DAYS)))
        batches.append(batch)
    return batches


def expected_counts(batches: list[list[Delivery]]) -> dict[tuple[str, dt.date], int]:
    distinct = {delivery for batch in batches for delivery in batch}
    return dict(collections.Counter((delivery.login, delivery.day) for delivery in distinct))


class Sender:
    """One keep-alive connection; post() answers (status, JSON body) or None when no answer came."""

    def __init__(self, port: int, signed: dict):
        self.port, self.signed, self.connection = port, signed, None

    def post(self, delivery: Delivery) -> tuple[int, dict] | None:
        body, signature = self.signed[delivery.login, delivery.day]
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "issues",
                   "X-GitHub-Delivery": delivery.delivery_id, "X-Hub-Signature-256": signature}
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.request("POST", "/webhooks/github", body, headers)
            response = self.connection.getresponse()
            return response.status, json.loads(response.read())
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def run_senders(port: int, signed: dict, batches, send) -> None:
    """send(sender, batch) in one thread per batch; re-raises the first failure of any thread."""
    def one_sender(batch):
        sender = Sender(port, signed)
        try:
            send(sender, batch)
        finally:
            sender.close()

    with ThreadPoolExecutor(len(batches)) as pool:
        for sent in [pool.submit(one_sender, batch) for batch in batches]:
            sent.result()


def stored() -> tuple[list[str], dict[tuple[str, dt.date], int]]:
    """The GitHub delivery ids stored, and issues tagged per (login, day)."""
    db.session.expire_all()
    ids = list(db.session.scalars(select(Event.delivery_id).where(Event.source == "github")))
    rows = db.session.execute(
        select(Customer.github_username, Engagement.date, func.sum(Engagement.issues_tagged))
        .join(Customer, Customer.id == Engagement.customer_id).group_by(Customer.github_username, Engagement.date))
    return ids, {(login, day): total for login, day, total in rows if total}


@pytest.fixture(scope="module")
def gunicorn(database_url, tmp_path_factory):
    """One server for the module: each test's clean-up empties the tables under it, which it holds no lock on."""
    server = Server(database_url, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log",
                    {"SECRET_KEY": "load-test", "GITHUB_WEBHOOK_SECRET": SECRET})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(gunicorn, ctx):
    for login in LOGINS:
        customers.add_customer({"email": f"{login}@example.com", "organization": login, "github_username": login},
                               "test")
    db.session.commit()
    return gunicorn


def test_concurrent_deliveries_with_duplicates_count_exactly_once(server):
    batches = plan(each=250, resends=25, seed=1)
    signed, answers = bodies(), collections.Counter()

    def send(sender, batch):
        for delivery in batch:
            answer = sender.post(delivery)
            assert answer is not None and answer[0] == 200, (answer, server.log.read_text()[-2000:])
            answers[answer[1]["status"]] += 1

    run_senders(server.port, signed, batches, send)
    ids, counts = stored()
    distinct = {delivery.delivery_id for batch in batches for delivery in batch}
    assert dict(answers) == {"processed": len(distinct), "duplicate": SENDERS * 25}
    assert sorted(ids) == sorted(distinct)
    assert counts == expected_counts(batches)


def test_a_killed_server_loses_no_acknowledged_delivery_and_counts_none_twice(server):
    batches = plan(each=60, resends=0, seed=2)
    signed, acknowledged, lost = bodies(), set(), []
    up, lock, deadline = threading.Event(), threading.Lock(), time.monotonic() + 90  # a wedged run, not a slow one
    up.set()

    def send(sender, batch):
        for delivery in batch:
            while True:
                assert up.wait(timeout=deadline - time.monotonic()), "the server did not come back"
                answer = sender.post(delivery)
                if answer is not None and 200 <= answer[0] < 300:
                    break
                # No answer (the crash) or 409 (a conflict the endpoint asks to retry); nothing else.
                assert answer is None or answer[0] == 409, (answer, server.log.read_text()[-2000:])
                lost.append(delivery)
                time.sleep(0.05)
            with lock:
                acknowledged.add(delivery.delivery_id)

    def crash():
        while len(acknowledged) < 160 and time.monotonic() < deadline:
            time.sleep(0.005)
        up.clear()
        server.kill()
        killed_after.append(len(acknowledged))
        server.start()
        up.set()

    killed_after: list[int] = []
    crasher = threading.Thread(target=crash)
    crasher.start()
    run_senders(server.port, signed, batches, send)
    crasher.join()
    ids, counts = stored()
    assert 160 <= killed_after[0] < SENDERS * 60 and lost, "the kill did not land in the middle of the run"
    assert len(ids) == len(set(ids)) and acknowledged <= set(ids)
    assert sum(counts.values()) == len(ids) and counts == expected_counts(batches)
