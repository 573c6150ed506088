"""(d) Pages: median latency of the `/customers` table over HTTP, against a bare Flask page, in two states.

(1) loaded: 10,000 customers (with onboarding) and today's health snapshots, so the page does not
recalculate while it is timed, and an admin to sign in as; then VACUUM ANALYZE, what autovacuum does
shortly after a bulk load. (2) after the recalculation: the same customers with HISTORY_DAYS days of
engagement each, then the product's own recalculation (snapshots.recalculate() + commit) and nothing
else: no VACUUM, no ANALYZE, the state the daily job leaves. The portal and a bare Flask app, whose one
route renders a static 50-row, 10-column table with render_template_string, are each served by
werkzeug's make_server(threaded=True) in a background thread of this process. Signed in over HTTP,
sequential requests on one keep-alive connection per server: WARMUP untimed, then REQUESTS timed per
URL; every response must be a 200 holding 50 table rows. Goal: each portal page's median latency at
most 3x the bare page's.
"""
from __future__ import annotations

import cProfile
import http.client
import http.cookies
import logging
import pstats
import re
import statistics
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlencode

from flask import Flask, render_template_string
from werkzeug.serving import make_server
from portal.health import snapshots
from portal.commands import create_user
from portal.extensions import db

import common

GOAL = 3.0
HISTORY_DAYS = 90
WARMUP, REQUESTS = 30, 200
ROWS, COLUMNS = 50, 10
EMAIL, PASSWORD = "bench-admin@example.com", "benchmark password"
FIRST_PAGE = "/customers"
FILTERED_PAGE = "/customers?cohort=Beta&status=active&sort=score&dir=desc&page=3"
BARE_PAGE = "/table"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
TABLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Table</title></head><body>
<table>
  <thead><tr>{% for name in headers %}<th>{{ name }}</th>{% endfor %}</tr></thead>
  <tbody>
  {% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
  {% endfor %}
  </tbody>
</table>
</body></html>"""


def bare_app() -> Flask:
    """The floor: Flask routing plus one Jinja render of a table shaped like the portal's (50 rows, 10 columns)."""
    app = Flask("bare")
    headers = [f"Column {column}" for column in range(1, COLUMNS + 1)]
    rows = [[f"Row {row} cell {column}" for column in range(1, COLUMNS + 1)] for row in range(1, ROWS + 1)]
    app.add_url_rule(BARE_PAGE, "table", lambda: render_template_string(TABLE, headers=headers, rows=rows))
    return app


def portal_app(url: str, customers: int, history_days: int = 0) -> Flask:
    """The portal on a database of `customers`, today's snapshots and an admin. Without history, the statistics
    are then refreshed (loaded state); with history_days of engagement, nothing runs after the recalculation."""
    common.fresh_database(url)
    common.seed(url, customers, history_days)
    app = common.make_app(url)
    with app.app_context():
        snapshots.recalculate()
        db.session.commit()
        create_user(EMAIL, "Benchmark Admin", "admin", PASSWORD)
        db.session.remove()
        if not history_days:
            refresh_statistics()
    return app


def refresh_statistics() -> None:
    """What autovacuum does shortly after a bulk load in production: planner statistics and, on PostgreSQL, the
    visibility map that lets index-only scans skip the table."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if connection.dialect.name == "postgresql" else "ANALYZE")


@contextmanager
def serving(app: Flask):
    """The app on a free local port, served from a background thread; yields the port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class Client:
    """One keep-alive HTTP connection to a local server that sends back the cookies it is given."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies = http.cookies.SimpleCookie()

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        cookies = "; ".join(f"{name}={morsel.value}" for name, morsel in self.cookies.items())
        headers = {"Cookie": cookies} if cookies else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(cookie)
        return response.status, text

    def close(self) -> None:
        self.connection.close()


def login_form(status: int, html: str) -> dict:
    """The sign-in form's fields, with the CSRF token read from the /login page."""
    match = CSRF.search(html)
    if status != 200 or not match:
        raise RuntimeError(f"pages benchmark: /login gave {status} without a CSRF token")
    return {"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}


def signed_in(status: int) -> None:
    if status != 302:
        raise RuntimeError(f"pages benchmark: signing in gave {status}, not a redirect")


def sign_in(client: Client) -> None:
    signed_in(client.request("POST", "/login", login_form(*client.request("GET", "/login")))[0])


def check(path: str, status: int, html: str) -> None:
    """A broken page is not timed: a 200 whose table body holds ROWS rows."""
    rows = html.partition("<tbody")[2].partition("</tbody>")[0].count("<tr")
    if status != 200 or rows != ROWS:
        raise RuntimeError(f"pages benchmark: {path} gave {status} with {rows} table rows, not 200 with {ROWS}")


def median_ms(client: Client, path: str, warmup: int, requests: int) -> float:
    """Median latency of `requests` sequential GETs after `warmup` untimed ones, in milliseconds."""
    for _ in range(warmup):
        check(path, *client.request("GET", path))
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        status, html = client.request("GET", path)
        times.append(time.perf_counter() - start)
        check(path, status, html)
    return statistics.median(times) * 1000


def measure(app: Flask, warmup: int, requests: int) -> dict[str, float]:
    """{path: median ms} for the two portal pages and the bare page, both servers in this process."""
    with serving(app) as portal_port, serving(bare_app()) as bare_port:
        portal, bare = Client(portal_port), Client(bare_port)
        try:
            sign_in(portal)
            medians = {path: median_ms(portal, path, warmup, requests) for path in (FIRST_PAGE, FILTERED_PAGE)}
            medians[BARE_PAGE] = median_ms(bare, BARE_PAGE, warmup, requests)
        finally:
            portal.close()
            bare.close()
    return medians


def print_profile(app: Flask, path: str) -> None:
    """cProfile of one request of `path` through the test client, signed in, after one warm-up request."""
    client = app.test_client()
    page = client.get("/login")
    signed_in(client.post("/login", data=login_form(page.status_code, page.get_data(as_text=True))).status_code)
    client.get(path)
    profiler = cProfile.Profile()
    response = profiler.runcall(client.get, path)
    check(path, response.status_code, response.get_data(as_text=True))
    print(f"\n  cProfile of one GET {path}: the portal's code and templates, top 15 by cumulative time")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"/(portal|templates)/", 15)
    print("  ... and every function, top 15 by own time")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def report(medians: dict[str, float]) -> None:
    baseline = medians[BARE_PAGE]
    print(f"  {'GET /customers, median':<44} {medians[FIRST_PAGE]:8.2f} ms")
    print(f"  {'GET filtered, sorted page 3, median':<44} {medians[FILTERED_PAGE]:8.2f} ms")
    print(f"  {'baseline: bare Flask 50x10 table, median':<44} {baseline:8.2f} ms")
    for name, path in (("first page", FIRST_PAGE), ("filtered page", FILTERED_PAGE)):
        ratio = medians[path] / baseline
        verdict = "within goal" if ratio <= GOAL else "OVER GOAL"
        print(f"  ratio {name} {ratio:.2f}x (goal at most {GOAL:g}x): {verdict}")


STATES = {"loaded, then VACUUM ANALYZE": 0, f"{HISTORY_DAYS} days of engagement, then the recalculation only": HISTORY_DAYS}


def run(url: str, customers: int, quick: bool, profile: bool) -> None:
    warmup, requests = (WARMUP // 3, REQUESTS // 10) if quick else (WARMUP, REQUESTS)
    print(f"\n(d) pages: {customers:,} customers, {requests} timed requests per URL after {warmup} warm-up")
    print(f"  filtered: {FILTERED_PAGE}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
    for state, history_days in STATES.items():
        print(f"  state: {state}")
        app = portal_app(url, customers, history_days)
        try:
            medians = measure(app, warmup, requests)
            report(medians)
            if profile:
                print_profile(app, max((FIRST_PAGE, FILTERED_PAGE), key=medians.get))
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
