"""Tasks: my tasks first, overdue first; done and snooze in place (from /tasks and the customer page), audited."""
import datetime as dt

import pytest
from sqlalchemy import select

from portal import clock
from portal.customers import service
from portal.extensions import db
from portal.models import AuditLog, Intervention, User

from .conftest import csrf_token


def task(customer, title, due=None, assignee=None, status="open", kind="task"):
    item = Intervention(customer_id=customer.id, kind=kind, title=title, due_date=due, assignee_id=assignee,
                        status=status, trigger="rule")
    db.session.add(item)
    return item


@pytest.fixture
def tasks(app, auth):
    auth.login("member")
    with app.app_context():
        me = db.session.scalar(select(User.id).where(User.role == "member"))
        customer = service.add_customer({"email": "a@example.com", "organization": "Acme", "github_username": "acme"},
                                        actor="test")
        today = clock.today()
        items = [task(customer, "Late call", today - dt.timedelta(days=2), me),
                 task(customer, "Review tomorrow", today + dt.timedelta(days=1), me),
                 task(customer, "Someday", None, me),
                 task(customer, "Unowned task", today),
                 task(customer, "Sleeping", today + dt.timedelta(days=5), me, status="snoozed"),
                 task(customer, "Woken up", today, me, status="snoozed"),
                 task(customer, "Finished", today, me, status="done"),
                 task(customer, "A note", today, me, kind="note")]
        db.session.commit()
        return {item.title: item.id for item in items}


def titles(html, candidates):
    return sorted((html.index(title), title) for title in candidates if title in html)


def test_my_tasks_overdue_first_snoozed_hidden_until_due(client, tasks):
    html = client.get("/tasks").get_data(as_text=True)
    assert [title for _, title in titles(html, tasks)] == ["Late call", "Woken up", "Review tomorrow", "Someday"]
    assert "(overdue)" in html
    everyone = client.get("/tasks?show=all&snoozed=1").get_data(as_text=True)
    assert "Unowned task" in everyone and "Sleeping" in everyone and "Finished" not in everyone
    assert "Unowned task" in client.get("/tasks?show=unassigned").get_data(as_text=True)
    fragment = client.get("/tasks", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.startswith('\n<section id="task-list"') or fragment.lstrip().startswith("<section")


def test_done_and_snooze_in_place_and_audited(app, client, tasks):
    token = csrf_token(client, "/tasks")
    done = client.post(f"/tasks/{tasks['Late call']}/complete", data={"csrf_token": token})
    assert done.status_code == 200 and "done" in done.get_data(as_text=True)
    snoozed = client.post(f"/tasks/{tasks['Someday']}/snooze?context=customer", data={"days": "3", "csrf_token": token})
    assert "snoozed until" in snoozed.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Intervention, tasks["Late call"]).status == "done"
        assert db.session.get(Intervention, tasks["Someday"]).due_date == clock.today() + dt.timedelta(days=3)
        assert db.session.scalar(select(db.func.count()).select_from(AuditLog).where(
            AuditLog.table_name == "interventions")) >= 3
    again = client.post(f"/tasks/{tasks['Late call']}/complete", data={"csrf_token": token})
    assert again.status_code == 409 and "already closed" in again.get_data(as_text=True)
    for days in ("90", "0", "²", "9" * 5000, "-1"):
        assert client.post(f"/tasks/{tasks['Review tomorrow']}/snooze",
                           data={"days": days, "csrf_token": token}).status_code == 422
    assert client.post(f"/tasks/{tasks['A note']}/complete", data={"csrf_token": token}).status_code == 404


def test_the_customer_page_lists_open_tasks_and_viewers_only_read(app, client, auth, tasks):
    page = client.get("/customers/c1001").get_data(as_text=True)
    page = page.partition('id="tasks-heading">')[2].partition('id="timeline-heading"')[0]
    assert page.startswith("Open tasks") and "Late call" in page and "Finished" not in page and "A note</strong>" not in page
    auth.login("viewer")
    assert client.post(f"/tasks/{tasks['Late call']}/complete",
                       data={"csrf_token": csrf_token(client, "/tasks")}).status_code == 403
    assert ">Done</button>" not in client.get("/tasks?show=all").get_data(as_text=True)
    auth.login("member")
    assert client.post(f"/tasks/{tasks['Late call']}/complete").status_code == 400


@pytest.mark.parametrize("show, snoozed", [("mine", False), ("all", False), ("unassigned", False), ("all", True)])
def test_the_list_is_by_due_date_undated_last_then_id_across_pages(ctx, show, snoozed):
    from portal import pages
    from portal.tasks import service as tasks_service

    me = db.session.scalar(select(User.id).where(User.role == "member"))
    customer = service.add_customer({"email": "b@example.com", "organization": "Beta", "github_username": "beta"},
                                    actor="test")
    today = clock.today()
    day = lambda offset: today + dt.timedelta(days=offset)  # noqa: E731
    for number, (due, assignee, status) in enumerate([
            (None, me, "open"), (today, None, "open"), (day(-3), me, "open"), (None, None, "open"), (today, me, "open"),
            (day(2), me, "snoozed"), (day(-1), None, "snoozed"), (day(9), None, "open"), (None, me, "open"),
            (today, me, "done")]):
        task(customer, f"Task {number}", due, assignee, status)
    db.session.commit()
    expected = sorted(
        (item for item in db.session.scalars(select(Intervention)).all()
         if item.status in ("open", "snoozed") and (snoozed or item.status == "open" or item.due_date <= today)
         and (show == "all" or item.assignee_id == (me if show == "mine" else None))),
        key=lambda item: (item.due_date is None, item.due_date or today, item.id))
    listed = []
    for number in range(1, 7):
        page = pages.paginate(tasks_service.listing(show, me, today, snoozed), number, 2,
                              counted=tasks_service.pending(show, me, today, snoozed))
        assert page.total == len(expected)
        listed += [item.id for item, _ in page.rows] if number <= page.pages else []
    assert listed == [item.id for item in expected] and any(item.due_date is None for item in expected)
