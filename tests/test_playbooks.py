"""Playbooks: who qualifies, the steps each start creates, no second pending task (even from two runs racing),
the daily cap per owner with its warning, the daily job, and the pages."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from flask_migrate import upgrade
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.exc import IntegrityError
from portal import batches
from portal.health import settings, snapshots
from portal.customers import service as customers
from portal.extensions import db
from portal.jobs import runs
from portal.jobs.tasks import STANDARD_JOBS
from portal.emails import render
from portal.models import AuditLog, Customer, EmailNotification, HealthCurrent, HealthScore, Intervention, Playbook, User
from portal.playbooks import catalog, rules, service
from tests.conftest import add_user, csrf_token, make_app

NOW = dt.datetime(2027, 3, 10, 7, 30, tzinfo=dt.timezone.utc)
TODAY = NOW.date()
STEPS = [{"kind": "task", "title": "Call {organization}", "due_days": 3, "body": "Owner {owner}, score {score} ({band})."},
         {"kind": "note", "text": "Started for {organization} in {stage}."},
         {"kind": "email", "subject": "Need a hand, {organization}?", "text": "Hello {organization}, ..."}]


def customer(number: int, band="at_risk", stage="onboarding", owner=None, cohort="GA", status="active",
             signed_up_days_ago=40) -> Customer:
    item = customers.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                   "github_username": f"org-{number}", "cohort": cohort}, actor="test",
                                  signup_date=TODAY - dt.timedelta(days=signed_up_days_ago), status=status)
    item.owner_id = owner.id if owner else None
    scored(item.id, TODAY, band, stage, score=30)
    db.session.flush()
    return item


def scored(customer_id: int, day: dt.date, band: str, stage: str, score: int) -> None:
    """A snapshot of the day and the customer's current health, as a recalculation leaves them."""
    db.session.add(snapshot(customer_id, day, band, stage, score))
    db.session.merge(HealthCurrent(customer_id=customer_id, date=day, score=score, band=band, stage=stage, signals=0,
                                   signal_count=0))


def snapshot(customer_id: int, day: dt.date, band: str, stage: str, score: int, days_active: int = 0) -> HealthScore:
    return HealthScore(customer_id=customer_id, date=day, score=score, status=band, stage=stage,
                       onboarding_component=0, activity_component=0, success_component=0, volume_component=0,
                       onboarding_percent=0, days_active=days_active, success_rate=0, prs_generated=0, prs_merged=0,
                       settings_version=snapshots.current_settings().version)


def playbook(name="Rescue", steps=STEPS, **condition) -> Playbook:
    item = Playbook(name=name, condition={"bands": ["at_risk"], **condition}, steps=steps, created_by="test")
    db.session.add(item)
    db.session.flush()
    return item


def pending(rule: str) -> list[tuple[int, str]]:
    return db.session.execute(select(Intervention.customer_id, Intervention.kind).where(
        Intervention.rule == rule, Intervention.status.in_(("open", "snoozed"))).order_by(Intervention.customer_id)).all()


@pytest.fixture
def owner(ctx):
    return add_user(email="olive@example.com", name="Olive Owner", role="member")


def test_a_start_creates_the_task_note_and_email_for_each_customer_who_qualifies(ctx, owner):
    match = customer(1, owner=owner)
    customer(2, band="healthy", owner=owner)
    customer(3, cohort="VIP", owner=owner)
    customer(4, status="paused", owner=owner)
    customer(5, signed_up_days_ago=5, owner=owner)
    book = playbook(cohorts=["GA"], min_days=30, max_days=60)
    result = service.start(book, NOW, "Ada")
    db.session.commit()
    assert (result.created, result.skipped) == (1, {})
    rows = db.session.scalars(select(Intervention).order_by(Intervention.id)).all()
    assert [(row.customer_id, row.kind, row.status, row.rule, row.trigger) for row in rows] == [
        (match.id, "task", "open", book.rule, "rule"), (match.id, "note", "done", book.rule, "rule"),
        (match.id, "email", "done", book.rule, "rule")]
    task, note, email = rows
    assert (task.title, task.due_date, task.assignee_id) == ("Call Org 1", TODAY + dt.timedelta(days=3), owner.id)
    assert task.body == "Owner Olive Owner, score 30 (at risk)."
    assert note.body == "Started for Org 1 in onboarding." and email.title == "Need a hand, Org 1?"
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.table_name == "interventions", AuditLog.record_id == f"{match.public_id}/{task.id}")) == 1
    assert book.last_result == {"day": "2027-03-10", "created": 1, "skipped": {}, "cap": 10}
    [queued] = db.session.scalars(select(EmailNotification).where(EmailNotification.kind == "playbook")).all()
    assert (queued.customer_id, queued.subject, queued.recipient) == (match.id, "Need a hand, Org 1?", "c1@example.com")
    assert queued.payload["text"].startswith("Hello Org 1") and queued.dedupe_key.endswith(f":task{task.id}")
    message = render.render(queued, match)
    assert message.subject == "Need a hand, Org 1?" and "Hello Org 1" in message.text and "Hello Org 1" in message.html
    assert "List-Unsubscribe" in message.headers


def test_a_risk_signal_narrows_the_condition(ctx, owner):
    customer(1, owner=owner, signed_up_days_ago=40)  # no activity ever: the "inactive" signal
    customer(2, owner=owner, signed_up_days_ago=3)   # too new for it
    book = playbook(signal="inactive")
    assert service.start(book, NOW, "Ada").created == 1


def test_no_second_task_while_one_is_open_or_snoozed_and_a_new_one_once_it_is_done(ctx, owner):
    item = customer(1, owner=owner)
    book = playbook()
    assert service.start(book, NOW, "Ada").created == 1
    assert service.start(book, NOW, "Ada").created == 0
    task = db.session.scalar(select(Intervention).where(Intervention.kind == "task"))
    task.status = "snoozed"
    assert service.start(book, NOW, "Ada").created == 0
    assert pending(book.rule) == [(item.id, "task")]
    task.status = "done"
    assert service.start(book, NOW, "Ada").created == 1


def test_the_database_refuses_a_second_pending_task_of_a_rule_but_not_of_another(ctx):
    item = customer(1)
    row = dict(customer_id=item.id, kind="task", title="t", trigger="rule", status="open")
    db.session.add_all([Intervention(**row, rule="playbook:1"), Intervention(**row, rule="at_risk_playbook"),
                        Intervention(**{**row, "status": "done"}, rule="playbook:1"),
                        Intervention(**{**row, "kind": "note"}, rule="playbook:1"), Intervention(**row, rule=None),
                        Intervention(**row, rule=None)])
    db.session.commit()
    db.session.add(Intervention(**{**row, "status": "snoozed"}, rule="playbook:1"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_two_runs_racing_create_one_task_per_customer(app, owner):
    """Two threads, each with its own session and connection, start the same playbook at the same moment: both
    find the same customers before either inserts, and the unique index decides."""
    with app.app_context():
        ids = [customer(number, owner=owner).id for number in range(1, 5)]
        book_id = playbook().id
        db.session.commit()
    barrier, local, results, errors = threading.Barrier(2, timeout=20), threading.local(), [], []

    def meet_before_the_first_insert(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO interventions") and not getattr(local, "met", False):
            local.met = True
            barrier.wait()

    def run():
        try:
            with app.app_context():
                results.append(service.start(db.session.get(Playbook, book_id), NOW, "racer").created)
                db.session.commit()
                db.session.remove()
        except Exception as error:  # reported below: an exception in a thread would pass unseen
            errors.append(error)
            barrier.abort()

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", meet_before_the_first_insert)
        try:
            threads = [threading.Thread(target=run) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        finally:
            event.remove(db.engine, "before_cursor_execute", meet_before_the_first_insert)
        assert errors == []
        assert sorted(results) == [0, 4]
        assert pending(f"playbook:{book_id}") == [(customer_id, "task") for customer_id in ids]
        kinds = db.session.execute(select(Intervention.kind, func.count()).group_by(Intervention.kind)).all()
        assert sorted(kinds) == [("email", 4), ("note", 4), ("task", 4)]  # one note and one email each, not two


def test_the_daily_cap_per_owner_skips_the_rest_and_says_who(ctx, owner):
    settings.update({"playbook_daily_cap": "3"}, "Ada")
    other = add_user(email="sam@example.com", name="Sam Lee", role="member")
    for number in range(1, 6):
        customer(number, owner=owner)
    customer(6, owner=other)
    first = playbook("First")
    first.condition = {"bands": ["at_risk"], "cohorts": ["none"]}
    second = playbook("Second")
    db.session.add(Intervention(customer_id=6, kind="task", title="earlier today", trigger="rule", status="done",
                                rule=first.rule, assignee_id=owner.id, created_at=NOW - dt.timedelta(hours=1)))
    result = service.start(second, NOW, "Ada")
    assert (result.created, result.skipped, result.cap) == (3, {"Olive Owner": 3}, 3)
    for number in (4, 5):
        scored(number, TODAY + dt.timedelta(days=1), "at_risk", "onboarding", 30)
    assert service.start(second, NOW + dt.timedelta(days=1), "Ada").created == 2  # a new day, a new allowance


def test_the_daily_job_starts_every_active_playbook(ctx, owner):
    customer(1, owner=owner)
    customer(2, cohort="VIP", owner=owner)
    playbook("On", cohorts=["GA"])  # the job recalculates today's scores first: both customers are at risk
    off = playbook("Off", cohorts=["VIP"])
    off.active = False
    db.session.commit()
    job = next(job for job in STANDARD_JOBS if job.name == "playbooks")
    assert runs.run(job, "schedule", NOW) == "succeeded"
    assert db.session.scalar(select(func.count()).select_from(Intervention).where(Intervention.kind == "task")) == 1


def test_cap_allocation_and_placeholders_are_plain_functions():
    chosen = rules.within_cap([("a", 1), ("b", 1), ("c", 2), ("d", 1), ("e", None)], {1: 1}, 2)
    assert (chosen.chosen, chosen.skipped) == (["a", "c", "e"], {1: 2})
    assert rules.unknown_placeholders("Hi {organization}, {nope}") == ["nope"]
    with pytest.raises(ValueError):
        rules.unknown_placeholders("Hi {organization")
    assert rules.render("{organization} at {score}", {"organization": "Acme", "score": 40}) == "Acme at 40"


def test_conditions_and_steps_read_as_words():
    words = catalog.describe_condition({"bands": ["at_risk"], "stages": ["onboarding", "initial_adoption"],
                                        "cohorts": ["GA"], "signal": "inactive", "min_days": 7, "max_days": None})
    assert words == ("Active customers with band at risk, stage onboarding or initial adoption, cohort GA, "
                     "signal “No Action activity”, signed up at least 7 days ago")
    assert catalog.describe_condition({}) == "Active customers (all of them)"
    assert catalog.describe_step(STEPS[0]) == "Task for the owner, due in 3 day(s): “Call {organization}”"


# Pages ------------------------------------------------------------------------------------------------------------

FORM = {"name": "Stalled onboarding", "description": "", "active": "y", "bands": ["at_risk"], "stages": ["onboarding"],
        "cohorts": "", "signal": "", "min_days": "", "max_days": "", "task_title": "Unblock {organization}",
        "task_due_days": "2", "task_body": "", "note_text": "", "email_subject": "", "email_text": ""}


def test_a_member_creates_and_edits_a_playbook_and_a_viewer_only_reads(app, client, auth):
    auth.login("member")
    response = client.post("/playbooks/new", data={**FORM, "csrf_token": csrf_token(client, "/playbooks/new")})
    assert response.status_code == 303
    with app.app_context():
        book = db.session.scalars(select(Playbook)).one()
        assert book.steps == [{"kind": "task", "title": "Unblock {organization}", "due_days": 2, "body": ""}]
        assert book.condition["stages"] == ["onboarding"] and book.created_by == "Member User"
        assert db.session.scalar(select(AuditLog.actor).where(AuditLog.table_name == "playbooks")) == "Member User"
    edit = f"/playbooks/{book.id}/edit"
    assert "Unblock {organization}" in client.get(edit).get_data(as_text=True)
    response = client.post(edit, data={**FORM, "task_due_days": "5", "csrf_token": csrf_token(client, edit)})
    assert response.status_code == 303
    client.post("/logout", data={"csrf_token": csrf_token(client, "/playbooks")})
    auth.login("viewer")
    html = client.get("/playbooks").get_data(as_text=True)
    assert "Stalled onboarding" in html and "due in 5 day(s)" in html and "New playbook" not in html
    assert client.get("/playbooks/new").status_code == 403
    assert client.post(f"/playbooks/{book.id}/start", data={"csrf_token": csrf_token(client, "/playbooks")}).status_code == 403


@pytest.mark.parametrize("change, message", [
    ({"name": ""}, "This field is required."),
    ({"task_title": "Call {customer}"}, "Unknown placeholder {customer}."),
    ({"email_text": "Hello {organization"}, "A brace { or } is not closed"),
    ({"min_days": "30", "max_days": "10"}, "Must be at least the minimum."),
    ({"email_subject": "Hello"}, "An email needs a subject and a text."),
    ({"task_due_days": "x"}, "Not a valid integer value."),
])
def test_bad_input_re_renders_the_form_with_field_errors(client, auth, change, message):
    auth.login("admin")
    response = client.post("/playbooks/new", data={**FORM, **change, "csrf_token": csrf_token(client, "/playbooks/new")})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_a_name_already_taken_is_a_field_error(app, client, auth):
    with app.app_context():
        playbook("Stalled onboarding")
        db.session.commit()
    auth.login("admin")
    response = client.post("/playbooks/new", data={**FORM, "csrf_token": csrf_token(client, "/playbooks/new")})
    assert response.status_code == 422 and "Another playbook has this name." in response.get_data(as_text=True)


def test_start_now_creates_the_tasks_and_the_page_warns_when_the_cap_was_reached(app, client, auth):
    auth.login("member")
    with app.app_context():
        me = db.session.scalars(select(User).where(User.role == "member")).one()
        settings.update({"playbook_daily_cap": "1"}, "Ada")
        snapshots.completed_on = snapshots.completed_on  # the first view of the day recalculates: snapshots are real
        for number in (1, 2):
            item = customers.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                           "github_username": f"org-{number}"}, actor="test")
            item.owner_id = me.id
        book = Playbook(name="New and quiet", condition={"stages": ["new_signup"]}, steps=STEPS[:1], created_by="t")
        db.session.add(book)
        db.session.commit()
        book_id = book.id
    page = f"/playbooks/{book_id}"
    response = client.post(f"{page}/start", data={"csrf_token": csrf_token(client, page)}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Started New and quiet: 1 task(s) created; 1 skipped: the daily cap of 1 tasks per owner was reached" in html
    assert "Daily cap reached on" in html and "Member User: 1 customer skipped" in html
    assert "Call Org 1" in html
    with app.app_context():
        assert db.session.scalar(select(AuditLog.actor).where(AuditLog.table_name == "playbooks",
                                                              AuditLog.field == "last_run_at")) == "Member User"


def test_turning_a_playbook_off_and_on(app, client, auth):
    with app.app_context():
        book_id = playbook().id
        db.session.commit()
    auth.login("member")
    token = csrf_token(client, "/playbooks")
    assert client.post(f"/playbooks/{book_id}/active", data={"active": "false", "csrf_token": token}).status_code == 303
    with app.app_context():
        assert db.session.get(Playbook, book_id).active is False
    assert "Turn on" in client.get("/playbooks").get_data(as_text=True)
    assert client.post(f"/playbooks/{book_id}/active", data={"active": "false"}).status_code == 400
    assert client.get("/playbooks/999").status_code == 404


def test_the_upgrade_cancels_all_but_the_oldest_of_duplicate_pending_tasks(databases):
    """Before the unique index, a snoozed and an open detractor follow-up could both exist."""
    app = make_app(databases.new())
    with app.app_context():
        upgrade(revision="0005")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO customers (id, email, organization, github_username, signup_date, "
                                    "cohort, industry, team_size, status, created_at, updated_at) VALUES (1, 'a@x.io', "
                                    "'A', 'a', '2027-01-01', '', '', 1, 'active', :now, :now)"), {"now": NOW})
            for status, rule in (("snoozed", "r"), ("open", "r"), ("open", "r"), ("open", "other"), ("done", "r")):
                connection.execute(text("INSERT INTO interventions (customer_id, kind, title, body, status, trigger, "
                                        "created_at, rule) VALUES (1, 'task', 't', '', :status, 'rule', :now, :rule)"),
                                   {"status": status, "rule": rule, "now": NOW})
        upgrade(revision="0007_playbooks")
        with db.engine.connect() as connection:
            statuses = connection.execute(text("SELECT status FROM interventions ORDER BY id")).scalars().all()
        assert statuses == ["snoozed", "cancelled", "cancelled", "open", "done"]
        db.engine.dispose()


def test_batches_of_customers_start_what_one_batch_starts_within_the_cap_and_a_rerun_starts_none(ctx, owner,
                                                                                                monkeypatch):
    """Seven customers two at a time: the cap of 3 per owner is carried from batch to batch, so the same customers
    are started (by id) and skipped as when all are read at once; a second run starts none."""
    settings.update({"playbook_daily_cap": "3"}, "Ada")
    other = add_user(email="sam@example.com", name="Sam Lee", role="member")
    for number in range(1, 8):
        customer(number, owner=other if number == 4 else owner, band="healthy" if number == 2 else "at_risk")
    book = playbook()
    db.session.commit()

    def started() -> list[tuple]:
        db.session.expire_all()
        return db.session.execute(select(Intervention.customer_id, Intervention.kind, Intervention.title)
                                  .order_by(Intervention.customer_id, Intervention.kind)).all()

    def emails() -> list[tuple]:
        return db.session.execute(select(EmailNotification.customer_id, EmailNotification.subject)
                                  .where(EmailNotification.kind == "playbook").order_by(EmailNotification.customer_id)).all()

    monkeypatch.setattr(batches, "BATCH", 2)
    result = service.start(book, NOW, "Ada", commit_batches=True)
    assert (result.created, result.skipped) == (4, {"Olive Owner": 2})
    in_batches, sent = started(), emails()
    assert sorted({row[0] for row in in_batches}) == [1, 3, 4, 5]
    assert [row[0] for row in sent] == [1, 3, 4, 5]
    assert service.start(book, NOW, "Ada").created == 0
    db.session.execute(delete(Intervention))
    db.session.execute(delete(EmailNotification).where(EmailNotification.kind == "playbook"))
    db.session.commit()
    monkeypatch.setattr(batches, "BATCH", 1000)
    assert service.start(book, NOW, "Ada").created == 4
    assert started() == in_batches and emails() == sent
