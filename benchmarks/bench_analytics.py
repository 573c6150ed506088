"""(e) Analytics: median latency of the `/analytics` page over a year, against raw SQL computing the same aggregates.

Seeds 10,000 customers with onboarding (and the times each step was reached), 365 days of engagement
and 365 days of health snapshots each: 3,650,000 rows in each of the two tables. The page is asked for
the whole year (`start` = 364 days ago), signed in, through the test client in this process: every
report (retention, funnel, migration, trends), its charts and the page around them. The baseline runs
the same five aggregates as hand-written SQL with the DBAPI cursor and fetches every row: cohort sizes,
retention by signup day and week, the funnel's steps and times, the band migration matrix, and the
trends by day. Goal: the page's median at most 2x the baseline's.
"""
from __future__ import annotations

import datetime as dt
import random
import statistics
import time

from portal.health import metrics
from portal.commands import create_user
from portal.extensions import db
from portal.models import Engagement

import bench_pages
import common

GOAL = 2.0
DAYS = 365
RETENTION_DAYS = 84
WARMUP, REQUESTS = 2, 7
BANDS = metrics.STATUSES
ANY_COUNT = " OR ".join(f"e.{count} > 0" for count in Engagement.COUNTS)
STEP_COLUMNS = ", ".join([*(f"o.{step}" for step in metrics.STEPS), *(f"o.{step}_at" for step in metrics.STEPS)])


def seed_snapshots(url: str, customers: int, today: dt.date) -> None:
    """A year of daily snapshots per customer, the band drifting a little from day to day."""
    rng = random.Random(common.SEED)
    app = common.make_app(url)
    columns = ("customer_id", "date", "score", "status", "stage", "onboarding_component", "activity_component",
               "success_component", "volume_component", "onboarding_percent", "days_active", "success_rate",
               "prs_generated", "prs_merged", "settings_version", "calculated_at")
    now = common.utcnow()
    with app.app_context(), db.engine.begin() as connection:
        mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        statement = f"INSERT INTO health_scores ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
        chunk = []
        for customer in range(1, customers + 1):
            score = rng.randint(20, 95)
            for offset in range(DAYS - 1, -1, -1):
                score = min(100, max(0, score + rng.randint(-3, 3)))
                band = "champion" if score >= 85 else "healthy" if score >= 70 else "needs_attention" if score >= 50 else "at_risk"
                chunk.append((customer, today - dt.timedelta(days=offset), score, band, "regular_usage",
                              30, 20, 15, 10, 100, 12, 60, 8, 5, 1, now))
                if len(chunk) >= common.CHUNK:
                    connection.exec_driver_sql(statement, chunk)
                    chunk = []
        if chunk:
            connection.exec_driver_sql(statement, chunk)
        for index, step in enumerate(metrics.STEPS):
            connection.exec_driver_sql(
                f"UPDATE onboarding SET {step}_at = {mark} WHERE {step}", (now - dt.timedelta(days=60 - 7 * index),))
    with app.app_context():
        db.engine.dispose()


def baseline_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        offset = "(e.date - c.signup_date)"
    else:
        offset = "CAST(julianday(e.date) - julianday(c.signup_date) AS INTEGER)"
    return [
        "SELECT signup_date, count(*) FROM customers WHERE signup_date BETWEEN :start AND :end GROUP BY signup_date",
        f"""SELECT c.signup_date, {offset} / 7, count(DISTINCT c.id) FROM customers c
            JOIN engagement e ON e.customer_id = c.id
            WHERE c.signup_date BETWEEN :start AND :end AND ({ANY_COUNT}) AND {offset} >= 0
              AND {offset} < {RETENTION_DAYS} AND e.date <= :end
            GROUP BY c.signup_date, {offset} / 7""",
        f"""SELECT c.cohort, c.signup_date, {STEP_COLUMNS} FROM customers c JOIN onboarding o ON o.customer_id = c.id
            WHERE c.signup_date BETWEEN :start AND :end ORDER BY c.cohort""",
        """SELECT a.status, b.status, count(*) FROM customers c
            LEFT JOIN health_scores a ON a.customer_id = c.id AND a.date = :then
            LEFT JOIN health_scores b ON b.customer_id = c.id AND b.date = :end
            GROUP BY a.status, b.status""",
        """SELECT e.date, sum(e.issues_tagged), sum(e.prs_generated), sum(e.prs_merged) FROM engagement e
            JOIN customers c ON c.id = e.customer_id WHERE e.date BETWEEN :start AND :end GROUP BY e.date""",
    ]


def raw_sql(app, start: dt.date, end: dt.date) -> None:
    from sqlalchemy import text

    with app.app_context():
        with db.engine.connect() as connection:
            values = {"start": start, "end": end, "then": end - dt.timedelta(days=30)}
            for statement in baseline_statements(connection.dialect.name):
                connection.execute(text(statement), values).all()


def median_ms(action, warmup: int, requests: int) -> float:
    for _ in range(warmup):
        action()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def run(url: str, customers: int, quick: bool) -> None:
    today = common.utc_today()
    start = today - dt.timedelta(days=DAYS - 1)
    print(f"\n(e) analytics: {customers:,} customers, {DAYS} days of engagement and of snapshots each")
    common.fresh_database(url)
    common.seed(url, customers, DAYS, today)
    seed_snapshots(url, customers, today)
    app = common.make_app(url)
    with app.app_context():
        create_user(bench_pages.EMAIL, "Benchmark Admin", "admin", bench_pages.PASSWORD)
        db.session.remove()
        bench_pages.refresh_statistics()
    client = app.test_client()
    page = client.get("/login")
    client.post("/login", data=bench_pages.login_form(page.status_code, page.get_data(as_text=True)))
    path = f"/analytics?start={start}&end={today}"

    def fetch_page() -> None:
        response = client.get(path)
        if response.status_code != 200 or b"chart-retention" not in response.data:
            raise RuntimeError(f"analytics benchmark: {path} gave {response.status_code}")

    warmup, requests = (1, 3) if quick else (WARMUP, REQUESTS)
    page_ms = median_ms(fetch_page, warmup, requests)
    raw_ms = median_ms(lambda: raw_sql(app, start, today), warmup, requests)
    ratio = page_ms / raw_ms
    print(f"  {'GET ' + path.split('?')[0] + ' (a year), median':<44} {page_ms:8.1f} ms")
    print(f"  {'baseline: the same aggregates in raw SQL':<44} {raw_ms:8.1f} ms")
    print(f"  ratio {ratio:.2f}x (goal at most {GOAL:g}x): {'within goal' if ratio <= GOAL else 'OVER GOAL'}")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
