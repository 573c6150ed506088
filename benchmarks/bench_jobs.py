"""(j) Scheduled jobs at scale: each job's time per customer with 100,000 customers over its time with 10,000.

PostgreSQL only (seeded with COPY). For each size, a fresh database holds the customers (spread over cohorts and
statuses as common.customer_rows does, 20 owners), their onboarding, 90 days of engagement and 90 days of health
snapshots before today (the band drifting from day to day), four past weeks of weekly summaries in the outbox, a
re-engagement email to one customer in twenty in the last fortnight, the churn of the churned customers in the audit
log (those churned longer ago than the erasure setting already erased, as earlier daily runs would have left them),
and two active playbooks. The seeded history is then ANALYZEd, as autovacuum would have done over the days before;
then today's snapshots come from the product's own `snapshots.recalculate()` + commit, and nothing analyzes them:
the planner believes today has next to no snapshots, as it does every morning in production.

Each job then runs as the scheduler calls it (its callable with a Context for now, then a commit), timed, best of
`--repeat` runs with what a run created deleted in between (erase_churned runs once: erasing cannot be undone).
Goal: for every job, the time per customer at 100,000 at most 1.2x the time per customer at 10,000.
"""
from __future__ import annotations

import datetime as dt
import io
import random
import time
from typing import Iterable

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import make_url

from portal import clock
from portal.emails import content
from portal.extensions import db
from portal.health import metrics, settings, snapshots
from portal.jobs.registry import Context
from portal.jobs.tasks import STANDARD_JOBS
from portal.models import AuditLog, EmailNotification, Intervention, Playbook, User, format_id

import common

GOAL = 1.2
DAYS = 90
OWNERS = 20
ERASE_AFTER = 60  # the Privacy setting: days after churning
JOBS = ("at_risk_playbook", "playbooks", "weekly_emails", "reengagement", "churn_model", "erase_churned")
ONCE = {"erase_churned"}
# One customer in seven has had no activity for a month: re-engagement's recipients, most of them at risk today.
IDLE_EVERY, IDLE_DAYS = 7, 30
PLAYBOOKS = [
    {"name": "Rescue at-risk adopters", "condition": {"bands": ["at_risk"], "stages": ["regular_usage", "initial_adoption"]},
     "steps": [{"kind": "task", "title": "Call {organization}", "body": "Score {score}", "due_days": 2},
               {"kind": "email", "subject": "Can we help, {organization}?", "text": "Hello from {owner}"}]},
    {"name": "Nudge needs-attention", "condition": {"bands": ["needs_attention"], "min_days": 30},
     "steps": [{"kind": "task", "title": "Check on {organization}", "body": "", "due_days": 5},
               {"kind": "note", "text": "Started for {public_id}"}]},
]


def copy_rows(connection, table: str, columns: Iterable[str], lines: Iterable[str]) -> None:
    """COPY text lines (tab-separated, newline-ended) into table, written in chunks of about a megabyte."""
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > 1 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def tsv(values: Iterable[object]) -> str:
    return "\t".join("\\N" if value is None else "t" if value is True else "f" if value is False else str(value)
                     for value in values) + "\n"


def engagement_lines(customers: int, today: dt.date, rng: random.Random):
    pool, idle = common.count_pool(rng), (0, 0, 0, 0, 0)
    dates = [(today - dt.timedelta(days=offset), offset) for offset in range(DAYS - 1, -1, -1)]
    for customer in range(1, customers + 1):
        quiet = customer % IDLE_EVERY == 0
        for day, offset in dates:
            counts = idle if quiet and offset < IDLE_DAYS else rng.choice(pool)
            yield tsv((customer, day, *counts))


def snapshot_lines(customers: int, today: dt.date, version: int, rng: random.Random):
    """90 days of snapshots before today; the band follows a score drifting a little each day."""
    now = common.utcnow().isoformat()
    for customer in range(1, customers + 1):
        score = rng.randint(20, 95)
        for offset in range(DAYS, 0, -1):
            score = min(100, max(0, score + rng.randint(-4, 4)))
            yield tsv((customer, today - dt.timedelta(days=offset), score, metrics.health_status(score), "regular_usage", 24, 20, 15, 10,
                       80, 12, 60, 8, 5, version, now))


def seed(url: str, customers: int, today: dt.date) -> None:
    rng = random.Random(common.SEED)
    people, steps = common.customer_rows(customers, rng)
    now = common.utcnow()
    app = common.make_app(url)
    with app.app_context():
        db.session.execute(insert(User), [
            {"id": key, "email": f"owner{key}@example.com", "name": f"Owner {key}", "password_hash": "-",
             "role": "member", "active": True, "created_at": now, "session_token": f"token-{key}"}
            for key in range(1, OWNERS + 1)])
        db.session.add_all(Playbook(created_by="benchmark", **playbook) for playbook in PLAYBOOKS)
        # No cap on playbook tasks: the playbooks job's work then grows with the customers who qualify.
        settings.update({"erase_churned_after_days": str(ERASE_AFTER), "playbook_daily_cap": "100000"}, "benchmark")
        version = snapshots.current_settings().version
        db.session.commit()
        churned = {person["id"]: now - dt.timedelta(days=rng.uniform(0, 3 * ERASE_AFTER))
                   for person in people if person["status"] == "churned"}
        for person in people:
            person["owner_id"] = 1 + person["id"] % OWNERS
            gone = churned.get(person["id"])
            person["erased_at"] = gone + dt.timedelta(days=ERASE_AFTER) if gone and (
                now - gone).days > ERASE_AFTER + 1 else None
        raw = db.engine.raw_connection()
        try:
            connection = raw.driver_connection
            columns = ("id", "email", "organization", "github_username", "signup_date", "cohort", "industry",
                       "team_size", "status", "owner_id", "erased_at", "created_at", "updated_at")
            copy_rows(connection, "customers", columns, (tsv(person[name] for name in columns) for person in people))
            columns = ("id", "customer_id", "blocker_type", "notes", "updated_at", *metrics.STEPS)
            copy_rows(connection, "onboarding", columns, (tsv(step[name] for name in columns) for step in steps))
            copy_rows(connection, "engagement", ("customer_id", "date", "issues_tagged", "prs_generated", "prs_merged",
                                                 "prs_rejected", "support_requests"),
                      engagement_lines(customers, today, rng))
            copy_rows(connection, "health_scores", (
                "customer_id", "date", "score", "status", "stage", "onboarding_component", "activity_component",
                "success_component", "volume_component", "onboarding_percent", "days_active", "success_rate",
                "prs_generated", "prs_merged", "settings_version", "calculated_at"),
                snapshot_lines(customers, today, version, rng))
            copy_rows(connection, "email_notifications", (
                "customer_id", "kind", "dedupe_key", "recipient", "subject", "status", "attempts", "last_error",
                "payload", "body_text", "body_html", "queued_at", "sent_at", "updated_at"),
                outbox_lines(people, today))
            copy_rows(connection, "audit_log", ("actor", "table_name", "record_id", "field", "old_value", "new_value",
                                                "created_at"),
                      (tsv(("benchmark", "customers", format_id("c", key), "status", "active", "churned", at))
                       for key, at in churned.items()))
            with connection.cursor() as cursor:
                for table in ("users", "customers", "onboarding"):
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                # What autovacuum would have done over the days before: statistics of the history, none of today.
                cursor.execute("ANALYZE")
            connection.commit()
        finally:
            raw.close()
        snapshots.recalculate(today=today)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def outbox_lines(people: list[dict], today: dt.date):
    """The four weeks of sent weekly summaries before the one the job queues; a recent re-engagement email for some."""
    for weeks in range(2, 6):
        first, _ = content.previous_week(today - dt.timedelta(days=7 * (weeks - 1)))
        sent = dt.datetime.combine(first + dt.timedelta(days=7), dt.time(8), tzinfo=dt.timezone.utc)
        week = f"{first.isocalendar()[0]}-W{first.isocalendar()[1]:02d}"
        for person in people:
            if person["status"] == "active":
                yield tsv((person["id"], "weekly_summary", f"weekly_summary:{format_id('c', person['id'])}:{week}",
                           person["email"], "Your week with the Action", "sent", 1, "", "{}", "", "", sent, sent,
                           sent))
    for person in people[::20]:
        day = today - dt.timedelta(days=1 + person["id"] % 13)
        at = dt.datetime.combine(day, dt.time(9), tzinfo=dt.timezone.utc)
        yield tsv((person["id"], "reengagement", f"reengagement:{format_id('c', person['id'])}:{day.isoformat()}",
                   person["email"], "We haven't seen you in a while", "sent", 1, "", "{}", "", "", at, at, at))


def marks() -> dict:
    return {model: db.session.scalar(select(func.coalesce(func.max(model.id), 0)))
            for model in (EmailNotification, Intervention, AuditLog)}


def undo(before: dict) -> None:
    """Delete what a timed run created, so the next run does the same work."""
    for model, mark in before.items():
        db.session.execute(delete(model).where(model.id > mark))
    db.session.commit()


def time_jobs(url: str, customers: int, repeat: int) -> dict[str, float]:
    app = common.make_app(url)
    jobs = {job.name: job for job in STANDARD_JOBS}
    found = {}
    with app.app_context():
        now = clock.now()
        context = Context(now, clock.local_date(now), lambda done, total=None: None)
        for name in JOBS:
            times = []
            for attempt in range(1 if name in ONCE else repeat):
                before = marks()
                db.session.remove()
                start = time.perf_counter()
                counts = jobs[name].run(context)
                db.session.commit()
                times.append(time.perf_counter() - start)
                if attempt == 0:
                    shown = {key: value for key, value in (counts or {}).items() if isinstance(value, int)}
                    print(f"    {name:<18} {times[-1]:8.3f} s  {shown}")
                if name not in ONCE:
                    undo(before)
            found[name] = min(times)
        db.session.remove()
        db.engine.dispose()
    return found


def run(url: str, largest: int, repeat: int, sizes: tuple[int, ...] | None = None) -> None:
    if make_url(url).get_backend_name() != "postgresql":
        raise RuntimeError("the jobs benchmark seeds with COPY: give it a PostgreSQL --database-url")
    sizes = sizes or (largest // 10, largest)
    print(f"\n(j) scheduled jobs: {' and '.join(f'{size:,}' for size in sizes)} customers, {DAYS} days of "
          "engagement and snapshots each")
    measured = {}
    today = common.utc_today()
    for size in sizes:
        common.fresh_database(url)
        start = time.perf_counter()
        seed(url, size, today)
        print(f"  {size:,} customers seeded and recalculated in {time.perf_counter() - start:.0f} s")
        measured[size] = time_jobs(url, size, repeat)
    small, large = sizes[0], sizes[-1]
    print(f"  {'job':<18} {'s at ' + format(small, ','):>12} {'s at ' + format(large, ','):>12} "
          f"{'per customer':>13}")
    over = []
    for name in JOBS:
        ratio = (measured[large][name] / large) / (measured[small][name] / small)
        if ratio > GOAL:
            over.append(name)
        print(f"  {name:<18} {measured[small][name]:12.3f} {measured[large][name]:12.3f} {ratio:12.2f}x")
    print(f"  goal: at most {GOAL:g}x per customer: {'within goal' if not over else 'OVER GOAL: ' + ', '.join(over)}")

