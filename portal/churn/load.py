"""Write a synthetic history (portal.churn.synthetic) into the database, set-based, in chunks."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Iterable

from sqlalchemy import func, insert, select
from ..health import metrics, snapshots
from ..extensions import db
from ..models import AuditLog, Customer, Engagement, Feedback, HealthScore, Onboarding, format_id
from ..sql import sync_sequences
from .synthetic import History, Params, generate

CHUNK = 20_000
ACTOR = "synthetic"
NOON = dt.time(12, tzinfo=dt.timezone.utc)


class Loader:
    """Buffers rows per table and writes them with one executemany per table when a buffer fills up; customers
    go first, so the rows that refer to them always find them."""

    def __init__(self) -> None:
        self.buffers: dict = {}
        self.counts: dict[str, int] = {}

    def add(self, table, rows: Iterable[dict]) -> None:
        buffer = self.buffers.setdefault(table, [])
        buffer.extend(rows)
        if len(buffer) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        for table, rows in self.buffers.items():
            if rows:
                write(table, rows)
                self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)
                rows.clear()


def write(table, rows: list[dict]) -> None:
    """SQLite: one executemany straight to the driver with values in the form it stores them (text and floats),
    as SQLAlchemy's per-value type processing would take most of the time on millions of rows. PostgreSQL:
    SQLAlchemy's own batched multi-row INSERTs, faster there than the driver's executemany."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        connection.execute(insert(table), rows)
        return
    names = list(rows[0])
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    connection.exec_driver_sql(statement, [tuple(sqlite_value(row[name]) for name in names) for row in rows])


@lru_cache(maxsize=1 << 16)  # the same few hundred days and component values come back millions of times
def sqlite_value(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def at_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, NOON)


def load(params: Params) -> dict[str, int]:
    """Fill an empty database with the generated history; returns rows written per table (not committed)."""
    if db.session.scalar(select(func.count(Customer.id))):
        raise ValueError("the database already has customers; synthetic history goes into an empty one")
    settings = snapshots.current_settings()
    weights = snapshots.weights_of(settings)
    loader = Loader()
    for history in generate(params, weights):
        loader.add(Customer.__table__, [customer_row(history, params)])
        loader.add(Onboarding.__table__, [onboarding_row(history, params.today)])
        loader.add(Engagement.__table__, engagement_rows(history))
        loader.add(HealthScore.__table__, snapshot_rows(history, settings.version, weights))
        loader.add(Feedback.__table__, [{"customer_id": history.key, "nps": nps, "source": "survey", "comment": "",
                                         "feature_request": "", "bug_report": "", "created_at": at_noon(day)}
                                        for day, nps in history.answers])
        loader.add(AuditLog.__table__, audit_rows(history, params.today))
    loader.flush()
    sync_sequences(Customer.__table__, Onboarding.__table__)
    return loader.counts


def customer_row(history: History, params: Params) -> dict:
    key = history.key
    created = at_noon(history.signup)
    return {"id": key, "email": f"team{key}@synthetic.example", "organization": f"Synthetic {key}",
            "github_username": f"synthetic-{key}", "signup_date": history.signup, "cohort": ("Beta", "GA")[key % 2],
            "industry": ("SaaS", "Fintech", "Retail")[key % 3], "team_size": 1 + key % 40,
            "status": "churned" if history.churned_on else "active", "created_at": created,
            "updated_at": at_noon(history.churned_on) if history.churned_on else created}


def onboarding_row(history: History, today: dt.date) -> dict:
    row = {"id": history.key, "customer_id": history.key, "notes": "", "updated_at": at_noon(history.signup),
           "blocker_type": next((kind for kind, _, cleared in history.blockers if cleared is None or cleared > today),
                                "none")}
    for step, day in zip(metrics.STEPS, history.steps_at):
        row[step], row[f"{step}_at"] = day is not None, at_noon(day) if day else None
    done = all(history.steps_at)
    row["completed_date"] = history.steps_at[-1] if done else None
    row["days_to_complete"] = metrics.days_to_complete(history.signup, history.steps_at[-1]) if done else None
    return row


def engagement_rows(history: History) -> list[dict]:
    return [{"customer_id": history.key, "date": day, **dict(zip(Engagement.COUNTS, counts))}
            for day, *counts in history.engagement]


def snapshot_rows(history: History, version: int, weights: metrics.Weights) -> list[dict]:
    rows = []
    for day, result, steps, active, generated, merged in history.snapshots:
        status = "churned" if day == history.churned_on else "active"
        rows.append({
            "customer_id": history.key, "date": day, "score": result.score, "status": result.status,
            "stage": metrics.lifecycle_stage({step: i < steps for i, step in enumerate(metrics.STEPS)}, status),
            "onboarding_component": result.onboarding, "activity_component": result.activity,
            "success_component": result.success, "volume_component": result.volume,
            "onboarding_percent": metrics.onboarding_percent(steps), "days_active": active,
            "success_rate": metrics.success_rate(merged, generated), "prs_generated": generated,
            "prs_merged": merged, "settings_version": version, "calculated_at": at_noon(day)})
    return rows


def audit_rows(history: History, today: dt.date) -> list[dict]:
    def row(table, record, field, old, new, day):
        return {"actor": ACTOR, "table_name": table, "record_id": record, "field": field, "old_value": old,
                "new_value": new, "created_at": at_noon(day)}

    rows = []
    if history.churned_on:
        rows.append(row("customers", format_id("c", history.key), "status", "active", "churned", history.churned_on))
    for kind, start, cleared in history.blockers:
        rows.append(row("onboarding", format_id("o", history.key), "blocker_type", "none", kind, start))
        if cleared is not None and cleared <= today:
            rows.append(row("onboarding", format_id("o", history.key), "blocker_type", kind, "none", cleared))
    return rows
