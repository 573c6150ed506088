"""Shared by the benchmarks: the app on a benchmark database, fast seeding, timing and reporting.

Seeding goes through the app's engine with executemany (no ORM objects), so building a million
rows takes seconds; the schema always comes from the app's migrations.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from flask_migrate import upgrade
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db
from portal.models import Customer, Engagement, Onboarding, utcnow
from portal.health.metrics import STEPS

SEED = 7
CHUNK = 50_000
COLUMNS = ("id", "customer_id", "date", *Engagement.COUNTS)


def utc_today() -> dt.date:
    """The portal's today with its default PORTAL_TIMEZONE (UTC)."""
    return dt.datetime.now(dt.timezone.utc).date()


def make_app(url: str):
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SCHEDULER_ENABLED": False, "SECRET_KEY": "benchmark"}
    )


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def fresh_database(url: str) -> None:
    """An empty database with the schema of the app's migrations (an SQLite file is simply deleted)."""
    path = sqlite_path(url)
    app = make_app(url)
    with app.app_context():
        if path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            db.drop_all()
            with db.engine.begin() as connection:
                connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        db.engine.dispose()


COHORTS = {"VIP": 1, "Beta": 4, "GA": 5}
STATUSES = {"active": 8, "paused": 1, "churned": 1}
INDUSTRIES = ("SaaS", "Fintech", "Retail", "Health", "Media")


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def customer_rows(count: int, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Customers c1001.. spread over cohorts, statuses and industries as a real book of business is, and their
    onboarding rows, with a random number of steps done."""
    now, first_signup = utcnow(), utc_today() - dt.timedelta(days=180)
    customers, onboarding = [], []
    for key in range(1, count + 1):
        customers.append({
            "id": key, "email": f"team{key}@example.com", "organization": f"Org {key}",
            "github_username": f"org-{key}", "signup_date": first_signup + dt.timedelta(days=rng.randint(0, 120)),
            "cohort": pick(rng, COHORTS), "industry": rng.choice(INDUSTRIES), "team_size": rng.randint(1, 50),
            "status": pick(rng, STATUSES), "created_at": now, "updated_at": now,
        })
        done = rng.randint(0, len(STEPS))
        onboarding.append({"id": key, "customer_id": key, "blocker_type": "none", "notes": "", "updated_at": now,
                           **{step: index < done for index, step in enumerate(STEPS)}})
    return customers, onboarding


def count_pool(rng: random.Random, size: int = 997) -> list[tuple[int, ...]]:
    """Plausible daily counts (about one day in four idle), drawn from a small pool for speed."""
    pool = []
    for _ in range(size):
        if rng.random() < 0.25:
            pool.append((0, 0, 0, 0, 0))
            continue
        generated = rng.randint(0, 4)
        merged = rng.randint(0, generated)
        pool.append((rng.randint(0, 3), generated, merged, generated - merged, int(rng.random() < 0.1)))
    return pool


def engagement_rows(customers: int, days: int, today: dt.date, rng: random.Random) -> Iterator[list[tuple]]:
    """Chunks of (id, customer_id, date, counts...) rows: every customer on each of the last `days` days."""
    dates = [(today - dt.timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
    counts = iter(rng.choices(count_pool(rng), k=customers * days))
    chunk, key = [], 0
    for customer in range(1, customers + 1):
        for day in dates:
            key += 1
            chunk.append((key, customer, day, *next(counts)))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(url: str, customers: int, days: int = 0, today: dt.date | None = None) -> None:
    """Fill an empty database with customers, their onboarding and `days` days of engagement each."""
    rng = random.Random(SEED)
    people, steps = customer_rows(customers, rng)
    app = make_app(url)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(insert(Customer.__table__), people)
        connection.execute(insert(Onboarding.__table__), steps)
        chunks = engagement_rows(customers, days, today or utc_today(), rng)
        if connection.dialect.name == "postgresql":  # COPY: millions of rows in a minute rather than ten
            with connection.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY engagement ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for chunk in chunks:
                        for row in chunk:
                            copy.write_row(row)
        else:
            statement = f"INSERT INTO engagement ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
            for chunk in chunks:
                connection.exec_driver_sql(statement, chunk)
        if days and connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT setval('engagement_id_seq', {customers * days + 1}, false)")
    with app.app_context():
        db.engine.dispose()


def best_of(repeat: int, action: Callable[[], object], setup: Callable[[], object] | None = None) -> float:
    """The fastest of `repeat` timed calls of action, each after an untimed setup."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def report(measured_name: str, measured: float, baseline_name: str, baseline: float, goal: float) -> None:
    ratio = measured / baseline
    verdict = "within goal" if ratio <= goal else "OVER GOAL"
    print(f"  {measured_name:<44} {measured:8.3f} s")
    print(f"  {baseline_name:<44} {baseline:8.3f} s")
    print(f"  ratio {ratio:.2f}x (goal at most {goal:g}x): {verdict}")


def run_growth(growth: Callable[[str, Path, list[int]], object], database_url: str | None, sizes: str) -> None:
    """The --growth run of bench_import.py and bench_export.py: growth(url, scratch directory, sizes) on the given
    database, or on SQLite in a temporary directory."""
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.WARNING)  # keeps Alembic's per-migration INFO lines out of the figures
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as scratch:
        workdir = Path(scratch)
        url = database_url or f"sqlite:///{workdir / 'benchmark.db'}"
        print(f"database: {url}")
        growth(url, workdir, [int(size) for size in sizes.split(",")])
