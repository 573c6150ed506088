"""The current health rows and the daily rollups are kept by each recalculation adding what it changed: any sequence
of changes (each recalculating what it touched, as the portal's paths do, a delivery only when it may move the
health) and of health job runs leaves them as a count from the snapshots says, and the job leaves the same
snapshots as a full recalculation."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select

from portal.customers import service
from portal.extensions import db
from portal.feedback import service as feedback
from portal.health import rollups, snapshots
from portal.health.metrics import STEPS
from portal.models import Customer, HealthCurrent, HealthRollup, HealthScore

from .conftest import clean

START = dt.date(2026, 10, 1)
CUSTOMERS = 4
KEPT = ("customer_id", "date", "score", "status", "stage", "days_active", "prs_generated", "prs_merged", "steps",
        "signals", "blocker", "days_to_complete")

CHANGES = st.one_of(
    st.tuples(st.just("engagement"), st.integers(0, CUSTOMERS - 1), st.integers(0, 40),
              st.fixed_dictionaries({"issues_tagged": st.integers(0, 3), "prs_generated": st.integers(0, 3),
                                     "prs_merged": st.integers(0, 2), "prs_rejected": st.integers(0, 2),
                                     "support_requests": st.integers(0, 2)})),
    # As most GitHub deliveries: counts that only make a day active, recalculated only when they may move the health.
    st.tuples(st.just("delivery"), st.integers(0, CUSTOMERS - 1), st.integers(0, 40),
              st.fixed_dictionaries({"issues_tagged": st.integers(0, 2), "support_requests": st.integers(0, 1)})),
    st.tuples(st.just("step"), st.integers(0, CUSTOMERS - 1), st.sampled_from(STEPS), st.booleans()),
    st.tuples(st.just("status"), st.integers(0, CUSTOMERS - 1), st.sampled_from(["active", "paused", "churned"])),
    st.tuples(st.just("feedback"), st.integers(0, CUSTOMERS - 1), st.integers(0, 10)),
    st.tuples(st.just("blocker"), st.integers(0, CUSTOMERS - 1), st.sampled_from(["none", "billing", "permissions"])),
    st.tuples(st.just("all_steps"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("next_day")),
    st.tuples(st.just("job")),
)


def stored_rollups() -> dict:
    return {(row.date, row.measure): row.value for row in db.session.scalars(select(HealthRollup)) if row.value}


def counted_rollups() -> dict:
    return {(day, measure): value for day, measures in rollups.counted().items()
            for measure, value in measures.items() if value}


def todays_snapshots(today: dt.date) -> list[tuple]:
    return sorted(tuple(getattr(row, name) for name in KEPT)
                  for row in db.session.scalars(select(HealthScore).where(HealthScore.date == today)))


def current_rows() -> list[tuple]:
    return sorted((row.customer_id, row.date, row.score, row.band, row.stage, row.signals)
                  for row in db.session.scalars(select(HealthCurrent)))


def latest_snapshots() -> list[tuple]:
    latest = (select(HealthScore.customer_id, func.max(HealthScore.date).label("date"))
              .group_by(HealthScore.customer_id).subquery())
    rows = db.session.execute(select(HealthScore).join(
        latest, (latest.c.customer_id == HealthScore.customer_id) & (latest.c.date == HealthScore.date))).scalars()
    return sorted((row.customer_id, row.date, row.score, row.status, row.stage, row.signals) for row in rows)


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGES, max_size=12))
def test_any_sequence_of_changes_keeps_the_rollups_and_current_rows_as_a_recount_says(app, changes):
    clean(app)
    with app.app_context():
        today = START
        customers = [service.add_customer({"email": f"c{n}@example.com", "organization": f"Org {n}",
                                           "github_username": f"org-{n}"}, "test",
                                          signup_date=START - dt.timedelta(days=30 + n)) for n in range(CUSTOMERS)]
        ids = [customer.id for customer in customers]
        snapshots.recalculate(today=today)
        db.session.commit()
        for change in changes:
            kind, *args = change
            if kind == "next_day":
                today += dt.timedelta(days=1)
                snapshots.refresh(today)
                continue
            if kind == "job":
                snapshots.refresh(today)
                continue
            customer = db.session.get(Customer, ids[args[0]])
            if kind == "delivery":
                after = service.add_counts(customer.id, args[2], "test", today - dt.timedelta(days=args[1]),
                                           audited=False)
                if not snapshots.moves_snapshot(args[2], after):
                    db.session.commit()
                    continue
            elif kind == "engagement":
                service.add_counts(customer.id, args[2], "test", today - dt.timedelta(days=args[1]))
            elif kind == "step":
                service.set_step(customer, args[1], args[2], "test")
            elif kind == "status":
                customer.status = args[1]
            elif kind == "feedback":
                feedback.record(customer, {"nps": args[1]}, "test")
            elif kind == "blocker":
                service.set_details(customer, args[1], "", "test")
            elif kind == "all_steps":  # completes onboarding: the days to complete are set
                for step in STEPS:
                    service.set_step(customer, step, True, "test")
            snapshots.recalculate([customer.id], today)  # feedback also recalculates the clock's today itself
            db.session.commit()

        assert stored_rollups() == counted_rollups()
        assert current_rows() == latest_snapshots()
        incremental = todays_snapshots(today)
        snapshots.recalculate(today=today)
        db.session.commit()
        assert todays_snapshots(today) == incremental
        assert stored_rollups() == counted_rollups()
        db.session.remove()


DAY_COUNTS = st.fixed_dictionaries({"issues_tagged": st.integers(0, 2), "prs_generated": st.integers(0, 2),
                                    "prs_merged": st.integers(0, 1), "prs_rejected": st.integers(0, 1),
                                    "support_requests": st.integers(0, 1)})


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.dictionaries(st.integers(0, 40), DAY_COUNTS, max_size=6), day=st.integers(-1, 40),
       added=st.fixed_dictionaries({"issues_tagged": st.integers(0, 2), "support_requests": st.integers(0, 2)}))
def test_a_delivery_said_not_to_move_the_health_leaves_the_snapshot_as_a_recalculation_finds_it(app, history, day,
                                                                                                added):
    clean(app)
    with app.app_context():
        customer = service.add_customer({"email": "c@example.com", "organization": "Org", "github_username": "org"},
                                        "test", signup_date=START - dt.timedelta(days=30))
        for days_ago, counts in history.items():
            service.add_counts(customer.id, counts, "test", START - dt.timedelta(days=days_ago))
        snapshots.recalculate(today=START)
        db.session.commit()
        before = todays_snapshots(START)
        after = service.add_counts(customer.id, added, "test", START - dt.timedelta(days=day), audited=False)
        moves = snapshots.moves_snapshot(added, after)
        snapshots.recalculate([customer.id], START)
        db.session.commit()
        if not moves:
            assert todays_snapshots(START) == before
        db.session.remove()


def test_counts_that_reach_the_score_or_a_quiet_day_may_move_the_health():
    row = lambda **counts: type("Row", (), {"issues_tagged": 0, "prs_generated": 0, **counts})  # noqa: E731
    assert not snapshots.moves_snapshot({"issues_tagged": 1}, row(issues_tagged=2))
    assert not snapshots.moves_snapshot({"support_requests": 1}, row(prs_generated=1))
    assert snapshots.moves_snapshot({"issues_tagged": 1}, row(issues_tagged=1))  # the day's first
    assert snapshots.moves_snapshot({"support_requests": 1}, row())  # a day active now, quiet for the rule
    assert snapshots.moves_snapshot({"prs_generated": 1}, row(issues_tagged=3, prs_generated=4))
    assert snapshots.moves_snapshot({}, row(issues_tagged=3))
