"""Health snapshots: the right numbers, one row per customer per day, and set-based queries."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import psycopg
from portal.health import snapshots
from portal.customers import service
from portal.extensions import db
from portal.health.metrics import STEPS
from portal.models import Customer, Engagement, HealthScore, HealthSettings

TODAY = dt.date(2026, 6, 30)


def make_customer(number: int, steps_done: int = 0, status: str = "active") -> Customer:
    customer = service.add_customer(
        {"email": f"c{number}@example.com", "organization": f"Org {number}", "github_username": f"org-{number}",
         "team_size": "3"}, actor="test", signup_date=TODAY - dt.timedelta(days=40), status=status)
    for step in STEPS[:steps_done]:
        service.set_step(customer, step, True, actor="test")
    return customer


def engagement(customer: Customer, days_ago: int, issues=1, generated=0, merged=0, rejected=0, support=0):
    db.session.add(Engagement(customer_id=customer.id, date=TODAY - dt.timedelta(days=days_ago), issues_tagged=issues,
                              prs_generated=generated, prs_merged=merged, prs_rejected=rejected, support_requests=support))


@contextmanager
def counting_queries():
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def score_of(customer: Customer) -> HealthScore:
    return db.session.scalars(select(HealthScore).filter_by(customer_id=customer.id, date=TODAY)).one()


def test_snapshot_holds_the_score_its_components_and_inputs(ctx):
    customer = make_customer(1, steps_done=4)
    engagement(customer, 0, generated=3, merged=2, rejected=1)
    engagement(customer, 29, generated=1, merged=0)          # first day of the window
    engagement(customer, 30, generated=4, merged=4)          # outside the window: counts for PR totals only
    engagement(customer, 5, issues=0, generated=0)           # all zero: not an active day
    engagement(customer, -1, generated=10, merged=10)        # tomorrow: not counted yet
    db.session.commit()
    assert snapshots.recalculate(today=TODAY) == 1
    score = score_of(customer)
    # onboarding 80% -> 24; 2 active days -> 10; 6/8 = 75% -> 18.75; 8 PRs -> 15 (cap)
    assert (score.onboarding_percent, score.days_active, score.success_rate, score.prs_generated) == (80, 2, 75, 8)
    assert score.onboarding_component == Decimal("24") and score.success_component == Decimal("18.75")
    assert (score.score, score.status, score.stage, score.settings_version) == (67, "needs_attention", "initial_adoption", 1)


def test_recalculating_twice_a_day_updates_the_one_row(ctx):
    customer = make_customer(1)
    snapshots.recalculate(today=TODAY)
    service.set_step(customer, "account_created", True, actor="test")
    snapshots.recalculate(today=TODAY)
    db.session.commit()
    assert db.session.scalars(select(HealthScore)).one().stage == "onboarding"


def test_a_recalculation_that_changes_nothing_writes_nothing(ctx):
    customer = make_customer(1, steps_done=3)
    engagement(customer, 2, generated=2, merged=1)
    db.session.commit()
    snapshots.recalculate(today=TODAY)
    db.session.commit()
    calculated = score_of(customer).calculated_at
    engagement(customer, 0, issues=4)  # an issue tagged today: no input of the score moves but the active days
    engagement(customer, 1, issues=0, generated=0)  # an all-zero day: nothing moves
    db.session.commit()
    with counting_queries() as statements:
        assert snapshots.recalculate([customer.id], TODAY) == 1
    db.session.commit()
    written = [statement for statement in statements if statement.lstrip().upper().startswith("INSERT")]
    assert len(written) == 2 and score_of(customer).days_active == 2  # today became an active day
    with counting_queries() as statements:
        snapshots.recalculate([customer.id], TODAY)
    db.session.commit()
    assert not [statement for statement in statements if not statement.lstrip().upper().startswith("SELECT")]
    assert score_of(customer).calculated_at > calculated


def test_churned_customers_are_in_stage_churned(ctx):
    customer = make_customer(1, steps_done=5, status="churned")
    snapshots.recalculate(today=TODAY)
    assert score_of(customer).stage == "churned"


def test_one_customer_or_some(ctx):
    first, second = make_customer(1), make_customer(2)
    assert snapshots.recalculate([second.id], today=TODAY) == 1
    assert db.session.scalars(select(HealthScore.customer_id)).all() == [second.id]
    assert first.id not in db.session.scalars(select(HealthScore.customer_id)).all()


def test_one_customer_some_and_everyone_get_the_same_scores(ctx):
    customers = [make_customer(number, steps_done=number) for number in range(1, 4)]
    for number, customer in enumerate(customers):
        engagement(customer, number, generated=number + 1, merged=number)
        engagement(customer, 40, generated=5)  # outside the window: counts toward the totals, not days active
    db.session.commit()

    def todays():
        return sorted((row.customer_id, row.score, row.days_active, row.prs_generated, row.prs_merged)
                      for row in db.session.scalars(select(HealthScore).filter_by(date=TODAY)))

    snapshots.recalculate(today=TODAY)
    everyone = todays()
    snapshots.recalculate([customers[0].id], today=TODAY)
    snapshots.recalculate([customers[1].id, customers[2].id], today=TODAY)
    assert todays() == everyone
    assert [row[2:] for row in everyone] == [(1, 6, 0), (1, 7, 1), (1, 8, 2)]


def test_recalculating_everyone_costs_the_same_queries_for_5_or_60_customers(ctx):
    def queries_for_everyone():
        with counting_queries() as statements:
            snapshots.recalculate(today=TODAY)
        return len(statements)

    for number in range(5):
        make_customer(number, steps_done=number % 6)
    db.session.commit()
    few = queries_for_everyone()
    for number in range(5, 60):
        customer = make_customer(number, steps_done=number % 6)
        engagement(customer, number % 30, generated=2, merged=1)
    db.session.commit()
    many = queries_for_everyone()
    # A batch: its ids, the lock (PostgreSQL), the risk signals' queries, the inputs and two upserts; then the next
    # batch's ids (none) and the day's mark.
    assert many == few <= 16, (many, few)


def test_settings_are_versioned_and_recorded(ctx):
    customer = make_customer(1, steps_done=5)
    db.session.add(HealthSettings(version=2, onboarding_weight=Decimal("40"), created_by="test"))
    db.session.flush()
    snapshots.recalculate(today=TODAY)
    score = score_of(customer)
    assert (score.score, score.settings_version) == (40, 2)


def test_default_settings_are_created_when_missing(ctx):
    db.session.execute(HealthSettings.__table__.delete())
    settings = snapshots.current_settings()
    assert (settings.version, settings.window_days, settings.success_weight) == (1, 30, Decimal("0.25"))


def test_a_full_recalculation_marks_the_day_and_pages_then_skip_it(ctx):
    make_customer(1)
    assert snapshots.completed_on() is None
    snapshots.recalculate([1], today=TODAY)
    assert snapshots.completed_on() is None
    snapshots.recalculate(today=TODAY)
    assert snapshots.completed_on() == TODAY


def test_one_customers_inputs_statement_stays_within_what_psycopg_keeps_translated():
    """psycopg keeps its translation of a statement (placeholders to $n) only under 4,096 characters and 50
    parameters, and parses a longer one again on every execution: every webhook delivery runs this one. (A batch's
    has its 500 ids in one array parameter, and is translated once per 500 customers.)"""
    compiled = snapshots.inputs_statement("one", "postgresql").compile(dialect=psycopg.dialect())
    assert len(str(compiled)) <= 4096 and len(compiled.params) <= 50, (len(str(compiled)), len(compiled.params))


def test_each_module_of_the_health_package_imports_on_its_own():
    """The package's modules refer to each other (the rollups to the risk kinds, the settings to the snapshots):
    whichever a script imports first must not meet another half-initialised."""
    package = Path(snapshots.__file__).parent
    for name in sorted(path.stem for path in package.glob("*.py") if path.stem != "__init__"):
        imported = subprocess.run([sys.executable, "-c", f"import portal.health.{name}"], capture_output=True,
                                  text=True, cwd=package.parent.parent)
        assert imported.returncode == 0, (name, imported.stderr[-500:])


def test_the_health_job_rests_after_each_batch_for_its_share_of_the_batch_time(ctx, monkeypatch):
    """HEALTH_JOB_REST_PERCENT: after each committed batch the job pauses for that share of the batch's time (its
    sleeps are recorded, and slept); 0 pauses never. Recalculations that are not the job never pause."""
    for number in range(1, 6):
        make_customer(number)
    db.session.commit()
    monkeypatch.setattr(snapshots, "BATCH", 2)
    rests = []
    sleep = snapshots.time.sleep
    monkeypatch.setattr(snapshots.time, "sleep", lambda seconds: (rests.append(seconds), sleep(seconds)))
    ctx.config["HEALTH_JOB_REST_PERCENT"] = 100
    started = snapshots.time.monotonic()
    assert snapshots.refresh(TODAY) == 5
    took = snapshots.time.monotonic() - started
    assert len(rests) == 3 and all(rest > 0 for rest in rests) and sum(rests) <= took / 2 + 0.01
    rests.clear()
    snapshots.recalculate(today=TODAY)
    ctx.config["HEALTH_JOB_REST_PERCENT"] = 0
    db.session.add(HealthSettings(version=snapshots.current_settings().version + 1,
                                  **vars(snapshots.weights_of(snapshots.current_settings()))))
    db.session.commit()
    assert snapshots.refresh(TODAY) == 5 and rests == []
