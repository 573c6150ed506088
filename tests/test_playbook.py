"""The at-risk playbook: one task for the owner of each customer newly at risk, none while one is pending."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, event, func, select
from portal import batches
from portal.health import snapshots
from portal.customers import service
from portal.extensions import db
from portal.jobs import playbook, runs
from portal.jobs.registry import Context
from portal.jobs.tasks import STANDARD_JOBS
from portal.health.metrics import STEPS
from portal.models import AuditLog, Customer, Engagement, HealthScore, Intervention
from tests.conftest import add_user

TODAY = dt.date(2027, 3, 10)
NOW = dt.datetime(2027, 3, 10, 7, 0, tzinfo=dt.timezone.utc)
PLAYBOOK = next(job for job in STANDARD_JOBS if job.name == "at_risk_playbook")


def customer(number: int, healthy_today: bool, owner=None, status="active") -> Customer:
    """Today's score comes from the real recalculation: no onboarding and no activity is at risk."""
    item = service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                 "github_username": f"org-{number}"}, actor="test",
                                signup_date=TODAY - dt.timedelta(days=60), status=status)
    item.owner_id = owner.id if owner else None
    if healthy_today:
        for step in STEPS:
            service.set_step(item, step, True, actor="test")
        for day in range(12):
            db.session.add(Engagement(customer_id=item.id, date=TODAY - dt.timedelta(days=day), issues_tagged=2,
                                      prs_generated=2, prs_merged=2))
    db.session.flush()
    return item


def snapshot(item: Customer, days_ago: int, status: str, score: int) -> None:
    db.session.add(HealthScore(
        customer_id=item.id, date=TODAY - dt.timedelta(days=days_ago), score=score, status=status, stage="regular_usage",
        onboarding_component=40, activity_component=10, success_component=5, volume_component=10,
        onboarding_percent=100, days_active=8, success_rate=50, prs_generated=6, prs_merged=3,
        settings_version=snapshots.current_settings().version))


def run_playbook() -> None:
    assert runs.run(PLAYBOOK, "schedule", NOW) == "succeeded"


def tasks() -> list[Intervention]:
    return db.session.scalars(select(Intervention).order_by(Intervention.customer_id)).all()


@pytest.fixture
def owner(ctx):
    return add_user(email="owner@example.com", name="Olive Owner", role="member")


def test_a_customer_newly_at_risk_gets_one_task_for_its_owner_due_in_two_days(ctx, owner):
    fell = customer(1, healthy_today=False, owner=owner)
    snapshot(fell, 3, "healthy", 72)
    snapshot(fell, 1, "needs_attention", 55)  # the previous snapshot is the latest before today
    db.session.commit()
    fell_id, public_id, owner_id = fell.id, fell.public_id, owner.id
    run_playbook()  # a run ends by closing the session: the objects above are detached
    [task] = tasks()
    assert (task.customer_id, task.kind, task.trigger, task.rule, task.status) == (
        fell_id, "task", "rule", "at_risk_playbook", "open")
    assert task.assignee_id == owner_id and task.created_by_id is None
    assert task.due_date == TODAY + dt.timedelta(days=2)
    score = db.session.scalars(select(HealthScore).filter_by(customer_id=fell_id, date=TODAY)).one()
    assert score.status == "at_risk"
    assert task.title == f"At risk: Org 1 fell to {score.score}"
    assert f"health 55 (needs attention) on {TODAY - dt.timedelta(days=1)}, {score.score} on {TODAY}" in task.body
    assert "Why it moved: Onboarding -40 points: onboarding fell from 100% to 0%." in task.body
    assert "To recover:" in task.body
    audit = db.session.scalars(select(AuditLog).where(AuditLog.table_name == "interventions")).one()
    assert (audit.actor, audit.record_id) == ("at-risk playbook", f"{public_id}/{task.id}")


def test_only_customers_who_moved_into_at_risk_get_a_task(ctx, owner):
    still = customer(1, healthy_today=False, owner=owner)
    snapshot(still, 1, "at_risk", 20)                      # at risk already yesterday
    customer(2, healthy_today=False, owner=owner)          # no earlier snapshot: nothing to move from
    fine = customer(3, healthy_today=True, owner=owner)
    snapshot(fine, 1, "healthy", 75)                       # not at risk today
    churned = customer(4, healthy_today=False, owner=owner, status="churned")
    snapshot(churned, 1, "healthy", 75)                    # not a customer any more
    unowned = customer(5, healthy_today=False)
    snapshot(unowned, 2, "champion", 90)
    db.session.commit()
    unowned_id, fine_id = unowned.id, fine.id
    run_playbook()
    assert [(task.customer_id, task.assignee_id) for task in tasks()] == [(unowned_id, None)]
    statuses = dict(db.session.execute(select(HealthScore.customer_id, HealthScore.status)
                                       .where(HealthScore.date == TODAY)).all())
    assert statuses[fine_id] != "at_risk"


@pytest.mark.parametrize("status, repeated", [("open", False), ("snoozed", False), ("done", True), ("cancelled", True)])
def test_no_second_task_while_one_is_pending(ctx, owner, status, repeated):
    fell = customer(1, healthy_today=False, owner=owner)
    snapshot(fell, 1, "healthy", 72)
    db.session.commit()
    run_playbook()
    db.session.execute(Intervention.__table__.update().values(status=status))
    db.session.commit()
    run_playbook()
    assert len(tasks()) == (2 if repeated else 1)


def test_the_run_counts_its_tasks_with_a_fixed_number_of_queries(ctx, owner):
    for number in range(1, 5):
        snapshot(customer(number, healthy_today=False, owner=owner), 1, "healthy", 72)
    db.session.commit()
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        counts = playbook.run(Context(NOW, TODAY, lambda done, total=None: None))
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert counts == {"tasks": 4}
    assert db.session.scalar(select(func.count(Intervention.id))) == 4
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO INTERVENTIONS")]
    assert len(inserts) == 1, statements


def test_batches_of_customers_give_the_tasks_one_batch_gives_and_a_rerun_gives_none(ctx, owner, monkeypatch):
    """Seven customers two at a time: those who moved into at risk get the same tasks as when all are read at once,
    and a second run, with the tasks pending, gives none."""
    for number in range(1, 8):
        item = customer(number, healthy_today=number == 4, owner=owner if number != 5 else None)
        snapshot(item, 1 + number % 3, "at_risk" if number == 6 else "healthy", 70 + number)
    db.session.commit()

    def given() -> list[tuple]:
        db.session.expire_all()
        return [(task.customer_id, task.title, task.body, task.due_date, task.assignee_id) for task in tasks()]

    monkeypatch.setattr(batches, "BATCH", 2)
    run_playbook()
    in_batches = given()
    assert [row[0] for row in in_batches] == [1, 2, 3, 5, 7]
    run_playbook()
    assert given() == in_batches
    db.session.execute(delete(Intervention))
    db.session.commit()
    monkeypatch.setattr(batches, "BATCH", 1000)
    run_playbook()
    assert given() == in_batches
