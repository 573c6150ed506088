"""A database with rows in every table: the demo data, and what the demo leaves empty added by hand."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal import demo
from portal.analytics import reports
from portal.emails import service as email_service
from portal.extensions import db
from portal.models import (
    Assessment, ChurnModel, Customer, Event, HealthSettings, JobLease, JobRun, LoginAttempt, utcnow,
)
from portal.health.settings import update as update_settings

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def every_table() -> None:
    demo.load()
    customers = db.session.scalars(select(Customer).order_by(Customer.id)).all()
    first, second = customers[0], customers[1]
    email_service.queue_nps(first, "seed")
    db.session.add_all([
        Event(source="github", delivery_id="d-1", event_type="issues", customer_id=first.id,
              payload={"sender": {"login": first.github_username}, "note": "päyload ✓"}, outcome="processed"),
        Event(source="landing", delivery_id="d-2", event_type="signup", payload={"customer": {"email": "x@y.example"}},
              outcome="unmatched", detail="no customer with that email"),
        Assessment(customer_id=second.id, sentiment="negative", sentiment_by="Dana Ortiz", sentiment_at=NOW,
                   band_override="at_risk", override_reason="Their champion left", override_until=dt.date(2027, 1, 1),
                   override_by="Dana Ortiz", override_at=NOW),
        ChurnModel(version=1, trained_by="seed", algorithm="logistic", features=["days_active"],
                   parameters={"coefficients": [0.5], "intercept": -1.25}, window_start=dt.date(2026, 9, 1),
                   window_end=dt.date(2026, 11, 30), samples=10, positives=2, metrics={"auc": 0.75}),
        JobRun(job="health", trigger="manual", started_at=NOW, finished_at=NOW, outcome="succeeded",
               counts={"customers": 40}, runner="seed:1"),
        JobLease(job="health", holder="seed:1", expires_at=NOW),
        LoginAttempt(email="someone@example.com", address="127.0.0.1", attempted_at=utcnow()),
    ])
    newest = db.session.scalar(select(func.max(HealthSettings.version)))
    db.session.add(HealthSettings(version=newest + 1, window_days=14, created_by="seed"))
    update_settings({"reengagement_days": "10"}, "seed")
    db.session.commit()
    reports.trends(reports.Filters(NOW.date() - dt.timedelta(days=30), NOW.date()))  # keeps the settled days' totals
    empty = [table.name for table in db.metadata.sorted_tables
             if not db.session.scalar(select(func.count()).select_from(table))]
    assert not empty, f"the seed left tables empty: {empty}"
