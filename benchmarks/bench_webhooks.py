"""(e) Webhooks: signed GitHub `issues` labeled deliveries per second through the whole portal, on
gunicorn (the repo's gunicorn.conf.py: 2 gthread workers) and PostgreSQL, against two baselines on
the same gunicorn settings in the same run (benchmarks/webhook_floor.py):

(a) a bare Flask hello route;
(b) the unavoidable work alone: HMAC check, insert the raw event, upsert the day's counter, one commit,
    plain psycopg.

The portal's deliveries are labeled issues, most of them on a day already active for their customer, which
cannot move its health and so are not worked out again (portal.health.snapshots.moves_snapshot); a second
portal figure sends pull requests the Action opened, each of which does move it, for the cost of that path.

The load generator is CLIENTS threads in this process, each with one keep-alive http.client
connection: WARMUP untimed requests, then REQUESTS timed ones per target, the targets taking turns for --repeat
rounds (each one's best counts), every answer checked
(200 and, for the webhooks, "processed"). Goal: the portal's throughput at least 0.5x of (b).
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import queue
import runpy
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

import common
import webhook_floor

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "github" / "issues.labeled.json"
PULL_FIXTURE = FIXTURE.with_name("pull_request.opened.json")
GOAL = 0.5
CLIENTS, WARMUP, REQUESTS = 16, 200, 2000
DAYS = 90  # of engagement per customer, which the health recalculation sums
SECRET = "benchmark-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"webhooks benchmark: gunicorn on port {port} did not start")


@contextmanager
def gunicorn(app: str, cwd: Path, env: dict):
    """app ("module:variable") under gunicorn with the portal's settings file; yields the port."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, start_new_session=True)
    try:
        wait_until_serving(process, port)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def deliveries(logins: list[str], day: str, pulls: bool = False) -> list[tuple[bytes, dict]]:
    """One signed body per login: a labeled issue of a repository that login owns, or with pulls a pull request
    the Action opened there (every one moves its customer's health: the PRs generated)."""
    signed = []
    for login in logins:
        payload = json.loads((PULL_FIXTURE if pulls else FIXTURE).read_text())
        payload["repository"]["owner"]["login"] = login
        if pulls:
            payload["pull_request"]["head"]["ref"] = "rsolv/fix-issue"
            payload["pull_request"]["created_at"] = f"{day}T12:00:00Z"
        else:
            payload["label"]["name"] = "rsolv"
            payload["issue"]["updated_at"] = f"{day}T12:00:00Z"
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        signed.append((body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature,
                              "X-GitHub-Event": "pull_request" if pulls else "issues"}))
    return signed


def post(connection: http.client.HTTPConnection, path: str, signed: list, index: int) -> float:
    """One request; its latency in seconds. A webhook answer other than 200 "processed" is an error."""
    if signed:
        body, headers = signed[index % len(signed)]
        headers = {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}
    else:
        body, headers = None, {}
    start = time.perf_counter()
    connection.request("POST" if signed else "GET", path, body, headers)
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200 or (signed and json.loads(answer).get("status") != "processed"):
        raise RuntimeError(f"webhooks benchmark: {path} answered {response.status} {answer[:200]!r}")
    return elapsed


def load(port: int, path: str, signed: list, requests: int) -> tuple[float, list[float]]:
    """CLIENTS threads share `requests` requests; (wall seconds, latencies)."""
    tickets: queue.SimpleQueue = queue.SimpleQueue()
    for index in range(requests):
        tickets.put(index)
    latencies: list[float] = []

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                try:
                    index = tickets.get_nowait()
                except queue.Empty:
                    return
                latencies.append(post(connection, path, signed, index))
        finally:
            connection.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        start = time.perf_counter()
        for finished in [pool.submit(client) for _ in range(CLIENTS)]:
            finished.result()  # re-raises a client's failure
        return time.perf_counter() - start, latencies


def measure(port: int, path: str, signed: list, warmup: int, requests: int) -> dict[str, float]:
    load(port, path, signed, warmup)
    seconds, latencies = load(port, path, signed, requests)
    latencies.sort()
    return {"rps": requests / seconds, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def statements_per_delivery(url: str, signed: list) -> list[str]:
    """The SQL one delivery runs through the portal (test client, in this process), for --profile."""
    app = common.make_app(url)
    app.config["GITHUB_WEBHOOK_SECRET"] = SECRET
    client, seen = app.test_client(), []
    body, headers = signed[0]
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        listener = lambda *args: seen.append(" ".join(args[2].split())[:110])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            client.post("/webhooks/github", data=body, headers={**headers, "X-GitHub-Delivery": str(uuid.uuid4())})
        finally:
            event.remove(engine, "before_cursor_execute", listener)
            engine.dispose()
    return seen


def settle(libpq: str) -> None:
    """Statistics for the freshly seeded tables and a checkpoint behind them, as on a database in service: so that
    neither autovacuum's first ANALYZE nor the load's checkpoint lands in the middle of the first measurement."""
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")


def report(figures: dict[str, dict[str, float]]) -> None:
    names = {"full": "portal: verify, store, count, health, commit", "pulls": "portal, PRs opened: health moves",
             "floor": "(b) HMAC + insert + upsert, psycopg", "hello": "(a) bare Flask hello route"}
    for key, name in names.items():
        figure = figures[key]
        print(f"  {name:<46} {figure['rps']:8.0f} req/s  p50 {figure['p50']:6.1f} ms  p99 {figure['p99']:6.1f} ms")
    full = figures["full"]["rps"]
    versus_floor = full / figures["floor"]["rps"]
    verdict = "within goal" if versus_floor >= GOAL else "BELOW GOAL"
    print(f"  ratio full/(a) {full / figures['hello']['rps']:.2f}x, full/(b) {versus_floor:.2f}x "
          f"(goal at least {GOAL:g}x of (b)): {verdict}; PRs opened/(b) {figures['pulls']['rps'] / figures['floor']['rps']:.2f}x")


def run(url: str, customers: int, quick: bool, profile: bool, repeat: int = 3) -> None:
    if make_url(url).get_backend_name() != "postgresql":
        raise RuntimeError("the webhooks benchmark needs --database-url of a scratch PostgreSQL database")
    warmup, requests = (WARMUP // 4, REQUESTS // 10) if quick else (WARMUP, REQUESTS)
    print(f"\n(e) webhooks: gunicorn {', '.join(gunicorn_settings())}, {CLIENTS} keep-alive clients, "
          f"{requests} timed requests per target after {warmup} warm-up, best of {repeat} rounds")
    common.fresh_database(url)
    common.seed(url, customers, DAYS)
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    webhook_floor.create_schema(libpq)
    settle(libpq)
    logins, today = [f"org-{key}" for key in range(1, customers + 1)], common.utc_today().isoformat()
    signed, pulls = deliveries(logins, today), deliveries(logins, today, pulls=True)
    if profile:
        statements = statements_per_delivery(url, signed)
        print(f"  one delivery runs {len(statements)} statements:", *statements, sep="\n    ")
    env = {"DATABASE_URL": url, "SECRET_KEY": "benchmark", "GITHUB_WEBHOOK_SECRET": SECRET,
           "SCHEDULER_ENABLED": "false", "FLOOR_DATABASE_URL": libpq, "FLOOR_SECRET": SECRET}
    targets = {"full": ("wsgi:app", ROOT, "/webhooks/github", signed),
               "pulls": ("wsgi:app", ROOT, "/webhooks/github", pulls),
               "floor": ("webhook_floor:floor", ROOT / "benchmarks", "/webhooks/github", signed),
               "hello": ("webhook_floor:hello", ROOT / "benchmarks", "/hello", [])}
    # The targets take turns, `repeat` rounds, and each one's best round counts: measured once each, the portal ran
    # first, straight after the seed's checkpoint, and paid alone for the first writes of every page after it.
    rounds: dict[str, list[dict]] = {key: [] for key in targets}
    for _ in range(repeat):
        for key, (app, cwd, path, bodies) in targets.items():
            with gunicorn(app, cwd, env) as port:
                rounds[key].append(measure(port, path, bodies, warmup, requests))
    report({key: max(figures, key=lambda figure: figure["rps"]) for key, figures in rounds.items()})


def gunicorn_settings() -> list[str]:
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return [f"{name} {settings[name]}" for name in ("workers", "worker_class", "threads")]
