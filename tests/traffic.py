"""Real traffic for the portal's inbound endpoints: a planned mix of signed GitHub deliveries, landing-site events
and metrics-API events for seeded customers, some of them sent twice with the same id, posted by sender threads.

A sender retries as real senders do: a delivery that got no answer (a crash) or 409 at once, a 503 after its
Retry-After or as soon as the database is back. What each was answered is kept for tests/traffic_checks.py, which
compares it with the database; tests/gunicorn_server.py serves the portal. Used by benchmarks/reliability.py (load
and faults, by hand) and tests/reliability/ (a short version in CI).
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
from dataclasses import dataclass
from pathlib import Path

from portal.customers import service as customers
from portal.extensions import db
from portal.integrations.signatures import sign

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github"
GITHUB_SECRET = "reliability-github-secret"
LANDING_SECRET = "reliability-landing-secret"
SETTINGS = {"GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "LANDING_WEBHOOK_SECRET": LANDING_SECRET}  # for the server
TODAY = "applied"  # the day bucket of counts that go to the day they are applied (the metrics API's)

# Kinds of event and their share of the mix.
MIX = {"issues.labeled": 35, "pull_request.opened": 15, "pull_request.merged": 8, "pull_request.rejected": 7,
       "landing.signup": 7, "landing.account_created": 8, "track.issue_resolution": 20}


@dataclass(frozen=True)
class Seeded:
    login: str
    email: str
    public_id: str
    api_key: str


def seed(count: int) -> list[Seeded]:
    """Customers org-01, org-02, ... with a metrics-API key each, through the portal's own functions (in an app
    context); committed."""
    made = []
    for number in range(1, count + 1):
        login = f"org-{number:02d}"
        customer = customers.add_customer({"email": f"team@{login}.example", "organization": f"Org {number}",
                                           "github_username": login}, "reliability")
        made.append((login, customer))
    keys = [customers.issue_api_key(customer, "reliability") for _login, customer in made]
    db.session.commit()
    return [Seeded(login, customer.email, customer.public_id, key) for (login, customer), key in zip(made, keys)]


@dataclass(frozen=True, eq=False)
class Delivery:
    source: str  # as the events table stores it: github, landing, action
    delivery_id: str
    path: str
    body: bytes
    headers: dict
    login: str | None = None  # the seeded customer whose rows it changes
    day: dt.date | str = TODAY  # the day its counts go to
    counts: tuple[str, ...] = ()  # the engagement columns it adds one to
    signup: str | None = None  # the email of the customer a signup creates
    ticks_account: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.delivery_id


class Planner:
    """Deliveries of the mix for seeded customers, one of them hot (three in ten events), the others even."""

    def __init__(self, seeded: list[Seeded], seed: int, days: tuple[dt.date, ...]):
        self.seeded, self.rng, self.days = seeded, random.Random(seed), days
        self.weights = [3 * (len(seeded) - 1) // 7 or 1] + [1] * (len(seeded) - 1)
        self.github_bodies: dict[tuple, bytes] = {}
        self.signups = 0

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def delivery(self) -> Delivery:
        kind = self.rng.choices(list(MIX), list(MIX.values()))[0]
        customer = self.rng.choices(self.seeded, self.weights)[0]
        source, _, action = kind.partition(".")
        if source in ("issues", "pull_request"):
            return self.github(source, action, customer)
        if source == "landing":
            return self.landing(action, customer)
        return self.track(customer)

    def github(self, event: str, action: str, customer: Seeded) -> Delivery:
        day = self.rng.choice(self.days)
        body = self.github_body(event, action, customer.login, day)
        headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-Hub-Signature-256":
                   sign(GITHUB_SECRET, body), "X-GitHub-Delivery": self.new_id()}
        count = {"labeled": "issues_tagged", "opened": "prs_generated", "merged": "prs_merged",
                 "rejected": "prs_rejected"}[action]
        return Delivery("github", headers["X-GitHub-Delivery"], "/webhooks/github", body, headers, customer.login,
                        day, (count,))

    def github_body(self, event: str, action: str, login: str, day: dt.date) -> bytes:
        """A fixture owned by `login`, timed on `day`; built once per (kind, login, day), as GitHub's bodies of one
        repository differ only in what the portal does not read."""
        cached = self.github_bodies.get((event, action, login, day))
        if cached:
            return cached
        stamp = f"{day.isoformat()}T12:00:00Z"
        if event == "issues":
            payload = json.loads((FIXTURES / "issues.labeled.json").read_text())
            payload["label"]["name"] = "rsolv"
            payload["issue"]["updated_at"] = stamp
        else:
            payload = json.loads((FIXTURES / f"pull_request.{'opened' if action == 'opened' else 'closed'}.json")
                                 .read_text())
            pull = payload["pull_request"]
            pull["head"]["ref"] = "rsolv/fix-42"
            pull.update(created_at=stamp, closed_at=stamp, merged=action == "merged",
                        merged_at=stamp if action == "merged" else None)
        payload["repository"]["owner"]["login"] = login
        payload.pop("installation", None)  # the repository owner names the customer
        body = self.github_bodies[event, action, login, day] = json.dumps(payload).encode()
        return body

    def landing(self, action: str, customer: Seeded) -> Delivery:
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        if action == "signup":
            self.signups += 1
            handle = f"lead-{self.new_id()[:13]}"
            person = {"email": f"dev@{handle}.example", "organization": handle.title(), "github_username": handle,
                      "cohort": "Beta", "industry": "SaaS", "team_size": 5}
            payload = {"event": "signup", "occurred_at": stamp, "customer": person}
        else:
            payload = {"event": "account_created", "occurred_at": stamp, "customer": {"email": customer.email}}
        body = json.dumps(payload).encode()
        event_id = f"landing-{self.new_id()}"
        headers = {"Content-Type": "application/json", "X-Signature-256": sign(LANDING_SECRET, body),
                   "X-Event-Id": event_id}
        if action == "signup":
            return Delivery("landing", event_id, "/webhooks/landing", body, headers, signup=payload["customer"]["email"])
        return Delivery("landing", event_id, "/webhooks/landing", body, headers, customer.login, ticks_account=True)

    def track(self, customer: Seeded) -> Delivery:
        event_id = f"run-{self.new_id()}"
        outcome = self.rng.choice(("no pr", "merged", "rejected"))
        metadata = {"issue_url": f"https://github.com/{customer.login}/app/issues/7", "duration_ms": 81234,
                    "pr_url": None if outcome == "no pr" else f"https://github.com/{customer.login}/app/pull/8",
                    "success": outcome == "merged"}
        body = json.dumps({"customer_id": customer.public_id, "event_type": "issue_resolution", "event_id": event_id,
                           "metadata": metadata}).encode()
        counts = ("issues_tagged",) if outcome == "no pr" else ("issues_tagged", "prs_generated", f"prs_{outcome}")
        headers = {"Content-Type": "application/json", "x-api-key": customer.api_key}
        return Delivery("action", event_id, "/metrics/track", body, headers, customer.login, TODAY, counts)


def plan(seeded: list[Seeded], senders: int, each: int, resend_share: float = 0.1, seed: int = 1,
         days: tuple[dt.date, ...] | None = None) -> list[list[Delivery]]:
    """Each sender's deliveries in order: `each` distinct ones, and `resend_share` of them sent a second time with the
    same id: half by the same sender some time after the first (a redelivery), half by another sender at about the
    same moment (two workers receiving one delivery at once)."""
    today = dt.datetime.now(dt.timezone.utc).date()
    planner = Planner(seeded, seed, days or (today - dt.timedelta(days=3), today - dt.timedelta(days=2)))
    rng = planner.rng
    distinct = [[planner.delivery() for _ in range(each)] for _ in range(senders)]
    ordered = [[(float(position), delivery) for position, delivery in enumerate(batch)] for batch in distinct]
    for sender, batch in enumerate(distinct):
        for number, position in enumerate(rng.sample(range(each - 1), round(each * resend_share))):
            if number % 2 or senders == 1:
                ordered[sender].append((rng.uniform(position + 0.5, each), batch[position]))
            else:
                other = rng.choice([index for index in range(senders) if index != sender])
                ordered[other].append((position + rng.uniform(-0.5, 0.5), batch[position]))
    return [[delivery for _, delivery in sorted(pairs, key=lambda pair: pair[0])] for pairs in ordered]


class Connection:
    """One connection kept alive, or a new one per request as GitHub's deliveries come (so that both workers take a
    share, rather than the worker that accepted a sender's connection serving all its requests). post() answers
    (status, Retry-After, the JSON status of a 2xx or the start of another body) or None when no answer came."""

    def __init__(self, port: int, keep_alive: bool = True):
        self.port, self.keep_alive, self.connection = port, keep_alive, None

    def post(self, delivery: Delivery) -> tuple[int, str | None, str] | None:
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.request("POST", delivery.path, delivery.body, delivery.headers)
            response = self.connection.getresponse()
            body = response.read()
            if not self.keep_alive:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            return None
        try:
            status = json.loads(body).get("status", "") if 200 <= response.status < 300 else body[:200].decode()
        except ValueError:
            status = f"not JSON: {body[:200]!r}"
        return response.status, response.headers.get("Retry-After"), status

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Traffic:
    """The senders, one thread each, and what they were answered. A fault injector calls mark(name) when it is
    done; first_ok[name] is then when the first 2xx to a request sent after that came (monotonic seconds)."""

    def __init__(self, port: int, batches: list[list[Delivery]], deadline_seconds: float = 240,
                 keep_alive: bool = False):
        self.port, self.batches, self.deadline_seconds, self.keep_alive = port, batches, deadline_seconds, keep_alive
        self.restored = threading.Event()  # cleared while the database is down: a 503 is retried once it is back
        self.restored.set()
        self.lock = threading.Lock()
        self.statuses: collections.Counter = collections.Counter()
        self.outcomes: collections.Counter = collections.Counter()  # of 2xx answers: processed, duplicate, ...
        self.resent: collections.Counter = collections.Counter()  # outcomes of a sender's second sends
        self.processed: collections.Counter = collections.Counter()  # answers "processed" per delivery
        self.no_answer = 0
        self.without_retry_after = 0  # 503s without Retry-After or a JSON error
        self.acknowledged: dict[tuple[str, str], Delivery] = {}
        self.latencies: list[float] = []
        self.marks: dict[str, float] = {}
        self.first_ok: dict[str, float] = {}
        self.unexpected: list[str] = []  # a status other than 2xx, 409 or 503
        self.started = self.finished = 0.0

    @property
    def distinct(self) -> int:
        return len({delivery.key for batch in self.batches for delivery in batch})

    def mark(self, name: str) -> float:
        with self.lock:
            self.marks[name] = time.monotonic()
            return self.marks[name]

    def wait_for(self, acknowledged: int) -> None:
        """Until that many deliveries were acknowledged (or the senders stopped)."""
        while len(self.acknowledged) < acknowledged and not self.finished:
            time.sleep(0.002)

    def run(self) -> None:
        self.started = time.monotonic()
        deadline = self.started + self.deadline_seconds
        threads = [threading.Thread(target=self.send, args=(batch, deadline)) for batch in self.batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.finished = time.monotonic()

    def send(self, batch: list[Delivery], deadline: float) -> None:
        connection, sent = Connection(self.port, self.keep_alive), set()
        try:
            for delivery in batch:
                resend = delivery.key in sent
                sent.add(delivery.key)
                if not self.deliver(connection, delivery, resend, deadline):
                    return  # the deadline passed: what is left is reported as not acknowledged
        finally:
            connection.close()

    def deliver(self, connection: Connection, delivery: Delivery, resend: bool, deadline: float) -> bool:
        while time.monotonic() < deadline:
            start = time.monotonic()
            answer = connection.post(delivery)
            end = time.monotonic()
            if answer is None:  # no answer: the same delivery again, as GitHub's redelivery would
                with self.lock:
                    self.no_answer += 1
                time.sleep(0.05)
                continue
            status, retry_after, outcome = answer
            with self.lock:
                self.statuses[status] += 1
                self.latencies.append(end - start)
                if 200 <= status < 300:
                    self.acknowledge(delivery, outcome, resend, start, end)
                    return True
                if status == 503 and not ((retry_after or "").isdigit() and '"error"' in outcome):
                    self.without_retry_after += 1
                if status not in (409, 503):
                    self.unexpected.append(f"{status} for {delivery.source} {delivery.delivery_id}: {outcome}")
            if status == 503:
                self.restored.wait(int(retry_after) if (retry_after or "").isdigit() else 5)
            if 400 <= status < 500 and status != 409:
                return True  # a request the plan got wrong: retrying would not change it
            time.sleep(0.02)
        return False

    def acknowledge(self, delivery: Delivery, outcome: str, resend: bool, start: float, end: float) -> None:
        """Record a 2xx answer (under the lock)."""
        self.acknowledged[delivery.key] = delivery
        self.outcomes[outcome] += 1
        self.processed[delivery.key] += outcome == "processed"
        if resend:
            self.resent[outcome] += 1
        for name, moment in self.marks.items():
            if name not in self.first_ok and start >= moment:
                self.first_ok[name] = end

    def figures(self) -> dict[str, float]:
        latencies = sorted(self.latencies) or [0.0]
        seconds = (self.finished or time.monotonic()) - self.started
        return {"requests": len(self.latencies), "rps": len(self.latencies) / seconds if seconds else 0.0,
                "p50": latencies[len(latencies) // 2] * 1000,
                "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}
