"""The customers table and the customer page, through the Flask test client."""
from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select
from portal.health import metrics, snapshots
from portal.customers import queries, service
from portal.extensions import db
from portal.models import AuditLog, Customer, Engagement, Feedback, Intervention, Onboarding, User

from .conftest import add_user, csrf_token

HX = {"HX-Request": "true"}


def add(number: int, steps: int = 0, **fields) -> Customer:
    values = {"email": f"c{number}@example.com", "organization": f"Org {number:03d}", "github_username": f"org-{number}",
              "cohort": "Beta" if number % 2 else "GA", "industry": "SaaS", "team_size": "5", **fields}
    customer = service.add_customer(values, "test", signup_date=dt.date.today() - dt.timedelta(days=20))
    for step in metrics.STEPS[:steps]:
        service.set_step(customer, step, True, "test")
    return customer


@pytest.fixture
def customers(app):
    with app.app_context():
        for number in range(1, 4):
            add(number, steps=number)
        db.session.commit()


@pytest.fixture
def member(auth, customers):
    auth.login("member")
    return auth.client


@pytest.fixture
def token(member):
    return csrf_token(member, "/customers")


@contextmanager
def counting_queries(app):
    statements = []
    with app.app_context():
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", listener)


def test_pages_need_sign_in(client, customers):
    for path in ("/customers", "/customers/c1001", "/customers/new", "/customers/c1001/cell/cohort/edit"):
        assert client.get(path).status_code == 302


def test_table_is_a_page_or_a_fragment(member):
    page = member.get("/customers")
    assert "<html" in page.get_data(as_text=True) and "HX-Request" in page.headers["Vary"]
    fragment = member.get("/customers?q=org%20002", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and 'id="customer-table"' in fragment
    assert "Org 002" in fragment and "Org 001" not in fragment
    boosted = member.get("/customers", headers={**HX, "HX-Boosted": "true"}).get_data(as_text=True)
    assert "<html" in boosted


@pytest.mark.parametrize(
    "query, shown",
    [("q=C3%40EXAMPLE", ["Org 003"]), ("q=org-2", ["Org 002"]), ("cohort=GA", ["Org 002"]),
     ("stage=initial_adoption", []), ("stage=onboarding", ["Org 002", "Org 003"]), ("status=churned", []),
     ("band=at_risk", ["Org 001", "Org 002", "Org 003"]), ("owner=none", ["Org 001", "Org 002", "Org 003"]),
     ("sort=organization&dir=desc", ["Org 003", "Org 002", "Org 001"]), ("stage=bogus", ["Org 001", "Org 002", "Org 003"]),
     ("q=_", []), ("q=%25", []), ("q=org%20_02", []),  # typed, not LIKE wildcards
     ("owner=99999999999999999999", ["Org 001", "Org 002", "Org 003"]), ("owner=%C2%B2", ["Org 001", "Org 002", "Org 003"]),
     (f"page={'9' * 5000}", ["Org 001", "Org 002", "Org 003"])],
)
def test_search_filter_and_sort(member, query, shown):
    text = member.get(f"/customers?{query}", headers=HX).get_data(as_text=True)
    assert re.findall(r">(Org \d{3})<", text) == shown


def test_paging_fifty_a_page(app, member):
    with app.app_context():
        for number in range(4, 56):
            add(number)
        db.session.commit()
    first = member.get("/customers", headers=HX).get_data(as_text=True)
    second = member.get("/customers?page=2", headers=HX).get_data(as_text=True)
    assert len(re.findall(r">(Org \d{3})<", first)) == 50 and "page 1 of 2" in first
    assert re.findall(r">(Org \d{3})<", second) == ["Org 051", "Org 052", "Org 053", "Org 054", "Org 055"]
    assert member.get("/customers?page=99", headers=HX).status_code == 200


def shown(member, query: str) -> list[str]:
    return re.findall(r">(Org \d{3})<", member.get(f"/customers?{query}", headers=HX).get_data(as_text=True))


@pytest.mark.parametrize("sort", ["score", "stage"])
@pytest.mark.parametrize("direction", ["", "desc"])
def test_customers_without_todays_snapshot_sort_last_both_ways(app, member, sort, direction):
    member.get("/customers")  # today's snapshots for Org 001-003
    with app.app_context():
        add(4, steps=5)  # no snapshot until something recalculates it
        db.session.commit()
    rows = shown(member, f"sort={sort}&dir={direction}")
    assert rows[-1] == "Org 004" and sorted(rows) == ["Org 001", "Org 002", "Org 003", "Org 004"]
    if sort == "score":
        assert rows[:3] == (["Org 003", "Org 002", "Org 001"] if direction else ["Org 001", "Org 002", "Org 003"])


@pytest.mark.parametrize("direction", ["", "desc"])
def test_ties_go_by_id_in_the_sorts_direction_across_page_boundaries(app, member, direction):
    member.get("/customers")
    with app.app_context():
        # 100 customers with the same score, named against their id order so a tie broken by name would show.
        for number in range(4, 104):
            add(number, organization=f"Org {107 - number:03d}")
        snapshots.recalculate()
        add(104)  # no snapshot today: last on the last page
        db.session.commit()
    tied = [f"Org {107 - number:03d}" for number in range(4, 104)]
    scored = ["Org 001", "Org 002", "Org 003"]
    expected = tied + scored if not direction else scored[::-1] + tied[::-1]
    pages = [shown(member, f"sort=score&dir={direction}&page={page}") for page in (1, 2, 3)]
    assert [len(page) for page in pages] == [50, 50, 4]
    assert pages[0] + pages[1] + pages[2] == expected + ["Org 104"]
    assert shown(member, f"sort=score&dir={direction}&page=4") == pages[2]  # past the end: the last page
    by_name = sorted(expected + ["Org 104"], reverse=bool(direction))
    assert shown(member, f"sort=organization&dir={direction}&page=2") == by_name[50:100]


@pytest.mark.parametrize("direction", ["", "desc"])
def test_a_page_past_the_ranked_customers_shows_those_without_a_snapshot(app, member, direction):
    member.get("/customers")  # today's snapshots for Org 001-003
    with app.app_context():
        for number in range(4, 64):
            add(number)  # no snapshot: shown after the three, in id order in the sort's direction
        db.session.commit()
    ranked = ["Org 001", "Org 002", "Org 003"]
    rest = [f"Org {number:03d}" for number in range(4, 64)]
    expected = ranked + rest if not direction else ranked[::-1] + rest[::-1]
    pages = [shown(member, f"sort=score&dir={direction}&page={page}") for page in (1, 2)]
    assert pages[0] + pages[1] == expected and len(pages[1]) == 13
    beta = [name for name in expected if int(name[4:]) % 2]
    assert shown(member, f"sort=score&dir={direction}&cohort=Beta&page=1") == beta[:50]
    assert shown(member, f"sort=stage&dir={direction}&stage=onboarding") == [
        name for name in expected[:3] if name != "Org 001"]  # a stage filter: only customers with a snapshot


def test_table_costs_the_same_queries_for_3_or_60_customers(app, member):
    member.get("/customers")  # today's scores exist from here on
    with counting_queries(app) as few:
        member.get("/customers")
    with app.app_context():
        for number in range(4, 61):
            customer = add(number, steps=number % 6)
            customer.owner_id = None
        db.session.commit()
    member.get("/customers")
    with counting_queries(app) as many:
        member.get("/customers?sort=owner")
    # the signed-in user, the page with its count, the filters' cohorts and team
    assert len(many) == len(few) == 3, many
    with counting_queries(app) as fragment:
        member.get("/customers?sort=cohort&page=2", headers=HX)
    assert len(fragment) == 2, fragment  # the table alone: no filters to fill


def test_cohorts_in_use_are_listed_once_the_usual_ones_first(app, customers):
    with app.app_context():
        for number, cohort in ((4, "Pilot"), (5, "VIP"), (6, ""), (7, "Alpha"), (8, "Pilot")):
            add(number, cohort=cohort)
        db.session.commit()
        assert queries.cohorts() == ["VIP", "Beta", "GA", "Alpha", "Pilot"]
        for email, name, active in (("zed@example.com", "Zed", True), ("al@example.com", "Al", True),
                                    ("gone@example.com", "Gone", False)):
            add_user(email, name, "member").active = active
        db.session.commit()
        choices = queries.filters_choices()
        assert choices.cohorts == queries.cohorts()
        assert [(user.id, user.name) for user in choices.team] == [(user.id, user.name) for user in queries.team()]
        assert [user.name for user in choices.team] == ["Al", "Zed"]


def test_edit_a_cell_in_place(app, member, token):
    editor = member.get("/customers/c1001/cell/team_size/edit", headers=HX).get_data(as_text=True)
    assert "data-inline-editor" in editor and 'value="5"' in editor
    saved = member.post("/customers/c1001/cell/team_size", data={"value": "42"}, headers={**HX, "X-CSRFToken": token})
    assert saved.status_code == 200 and ">42<" in saved.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, 1).team_size == 42
        change = db.session.scalars(select(AuditLog).filter_by(field="team_size")).one()
        assert (change.actor, change.old_value, change.new_value) == ("Member User", "5", "42")


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_table_cells_are_the_cells_an_edit_puts_back(app, auth, customers, role):
    """The table writes its editable cells out rather than calling the cells macro: the markup must stay the same."""
    with app.app_context():
        customer = db.session.get(Customer, 2)
        customer.cohort, customer.industry = "", ""
        customer.owner_id = add_user("member@example.com", "Member User", "member").id
        db.session.commit()
    auth.login(role)
    table = auth.client.get("/customers?q=org%20002", headers=HX).get_data(as_text=True)
    in_table = re.findall(r'<td data-cell="(\w+)".*?</td>', table)
    assert in_table == list(service.EDITABLE)
    for field in service.EDITABLE:
        cell = auth.client.get(f"/customers/c1002/cell/{field}").get_data(as_text=True).strip()
        assert re.search(rf'<td data-cell="{field}".*?</td>', table).group(0) == cell
    assert ("tabindex" in table) == (role == "member") and ">–<" in table and ">Member User<" in table


@pytest.mark.parametrize("field, value, message", [("team_size", "0", "at least 1"), ("team_size", "many", "whole number"),
                                                   ("team_size", "2147483648", "from 1 to 1,000,000"),
                                                   ("team_size", "1000001", "at most 1,000,000"),
                                                   ("team_size", "9" * 5000, "from 1 to 1,000,000"),
                                                   ("status", "gone", "must be one of"), ("owner", "999", "active team member"),
                                                   ("owner", "99999999999", "active team member"),
                                                   ("owner", "²", "active team member"),
                                                   ("organization", "", "required"), ("cohort", "x" * 51, "longer than 50")])
def test_a_bad_value_shows_its_error_in_the_cell_and_saves_nothing(app, member, token, field, value, message):
    response = member.post(f"/customers/c1001/cell/{field}", data={"value": value}, headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, 1).team_size == 5 and not db.session.scalars(select(AuditLog).filter(
            AuditLog.actor == "Member User")).first()


def test_owner_and_status_edits(app, member, token):
    with app.app_context():
        owner_id = db.session.scalars(select(User.id).filter_by(role="member")).one()
    member.post("/customers/c1002/cell/owner", data={"value": str(owner_id)}, headers={**HX, "X-CSRFToken": token})
    response = member.post("/customers/c1002/cell/status", data={"value": "churned"}, headers={**HX, "X-CSRFToken": token})
    assert ">Churned<" in response.get_data(as_text=True)
    table = member.get("/customers?stage=churned", headers=HX).get_data(as_text=True)
    assert "Org 002" in table and "Member User" in table


def test_changes_need_csrf_and_an_editor(app, client, auth, customers):
    auth.login("viewer")
    assert client.get("/customers/c1001/cell/cohort/edit").status_code == 403
    token = csrf_token(client, "/customers")
    for path, data in (("/customers/c1001/cell/cohort", {"value": "VIP"}), ("/customers/bulk", {"ids": "c1001"}),
                       ("/customers/c1001/onboarding/account_created", {"done": "true"}),
                       ("/customers/c1001/details", {"notes": "x"}), ("/customers/new", {})):
        assert client.post(path, data=data, headers={"X-CSRFToken": token}).status_code == 403, path
    page = client.get("/customers").get_data(as_text=True)
    assert "data-edit-url" not in page and "New customer" not in page


def test_missing_csrf_token_is_refused(member):
    assert member.post("/customers/c1001/cell/cohort", data={"value": "VIP"}).status_code == 400


@pytest.mark.parametrize("path", ["/customers/c9999", "/customers/x1", "/customers/c1001/cell/email/edit",
                                  "/customers/c1001/timeline?page=1&x", "/customers/c1000",
                                  "/customers/c99999999999999999999", "/customers/c²", f"/customers/c{'1' * 5000}"])
def test_unknown_things_are_404(member, path):
    expected = 200 if "timeline" in path else 404
    assert member.get(path).status_code == expected


def test_bulk_change(app, member, token):
    response = member.post("/customers/bulk", data={"ids": ["c1001", "c1003"], "change": "cohort:VIP",
                                                    "csrf_token": token, "back": "/customers?q=org"})
    assert response.status_code == 303 and response.headers["Location"] == "/customers?q=org"
    with app.app_context():
        assert db.session.scalars(select(Customer.cohort).order_by(Customer.id)).all() == ["VIP", "GA", "VIP"]
    bad = member.post("/customers/bulk", data={"ids": ["c1001", "c1002"], "change": "status:gone",
                                               "csrf_token": token}, follow_redirects=True)
    assert "Nothing changed" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Customer.status).distinct()).all() == ["active"]


def test_new_customer_form(app, member, token):
    form = {"email": "new@delta.example", "organization": "Delta", "github_username": "delta-co", "cohort": "VIP",
            "industry": "Media", "team_size": "8", "owner": "", "signup_date": "", "csrf_token": token}
    created = member.post("/customers/new", data=form)
    assert created.status_code == 303 and created.headers["Location"] == "/customers/c1004"
    again = member.post("/customers/new", data={**form, "github_username": "DELTA-CO", "email": "other@delta.example"})
    assert again.status_code == 422 and "already used by c1004" in again.get_data(as_text=True)
    bad = member.post("/customers/new", data={**form, "email": "nope", "team_size": "0"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Number must be between 1 and" in text and "Invalid email address." in text
    with app.app_context():
        assert db.session.scalars(select(Customer.email).where(Customer.id == 4)).one() == "new@delta.example"
        assert len(db.session.scalars(select(Customer)).all()) == 4


@pytest.mark.parametrize("signup_date", ["1900-01-01", "2283-01-01"])
def test_a_new_customer_needs_a_plausible_signup_date(app, member, token, signup_date):
    form = {"email": "new@delta.example", "organization": "Delta", "github_username": "delta-co", "cohort": "VIP",
            "industry": "Media", "team_size": "8", "owner": "", "signup_date": signup_date, "csrf_token": token}
    response = member.post("/customers/new", data=form)
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "Signup date must be from 2000-01-01 to" in text and signup_date in text
    with app.app_context():
        assert len(db.session.scalars(select(Customer)).all()) == 3


def test_customer_page_explains_the_score(app, member):
    with app.app_context():
        db.session.add(Engagement(customer_id=3, date=dt.date.today(), issues_tagged=2, prs_generated=2, prs_merged=1,
                                  prs_rejected=1, support_requests=0))
        db.session.commit()
    text = member.get("/customers/c1003").get_data(as_text=True)
    for expected in ("Org 003", "3 of 5 steps (60%)", "1 active day(s) in the last 30", "1 of 2 PRs merged (50%)",
                     "more point(s) to reach needs attention", "Engagement, last 90 days", "Timeline"):
        assert expected in text, expected
    chart = json.loads(re.search(r'id="engagement-data">(.*?)</script>', text, re.S).group(1))
    assert chart["data"]["datasets"][1]["data"][-1] == 2 and len(chart["data"]["labels"]) == 90


def test_toggling_a_step_updates_checklist_health_and_stage_at_once(app, member, token):
    response = member.post("/customers/c1001/onboarding/account_created", data={"done": "true"},
                           headers={**HX, "X-CSRFToken": token})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="checklist"' in text
    assert 'id="health-card"' in text and 'hx-swap-oob="true"' in text and ">Onboarding</span>" in text
    assert "2 of 5 steps (40%)" in text
    member.post("/customers/c1001/onboarding/account_created", data={}, headers={**HX, "X-CSRFToken": token})
    with app.app_context():
        onboarding = db.session.get(Onboarding, 1)
        assert onboarding.account_created is False
        actors = db.session.scalars(select(AuditLog.actor).filter_by(record_id="o1001", field="account_created")).all()
        assert actors == ["Member User", "Member User"]
    assert member.post("/customers/c1001/onboarding/first_deploy", headers={"X-CSRFToken": token}).status_code == 404


def test_blocker_and_notes_save_as_you_type(app, member, token):
    response = member.post("/customers/c1002/details", data={"blocker_type": "permissions", "notes": "Needs org admin"},
                           headers={**HX, "X-CSRFToken": token})
    assert response.status_code == 200 and "Saved at" in response.get_data(as_text=True)
    bad = member.post("/customers/c1002/details", data={"blocker_type": "weather", "notes": ""},
                      headers={**HX, "X-CSRFToken": token})
    assert bad.status_code == 422 and "Not saved" in bad.get_data(as_text=True)
    with app.app_context():
        onboarding = db.session.get(Onboarding, 2)
        assert (onboarding.blocker_type, onboarding.notes) == ("permissions", "Needs org admin")


def test_notes_tasks_and_feedback(app, member, token):
    task = {"kind": "task", "title": "Call the CTO", "body": "", "due_date": "2026-12-01", "assignee": "",
            "csrf_token": token}
    assert member.post("/customers/c1001/interventions", data=task).status_code == 303
    assert member.post("/customers/c1001/feedback", data={"nps": "9", "csat": "", "comment": "Loves it",
                                                           "source": "call", "csrf_token": token}).status_code == 303
    bad = member.post("/customers/c1001/feedback", data={"nps": "11", "source": "call", "csrf_token": token},
                      follow_redirects=True)
    assert "The feedback was not saved" in bad.get_data(as_text=True)
    for assignee in ("99999999999", "²"):
        unknown = member.post("/customers/c1001/interventions", data={**task, "assignee": assignee}, follow_redirects=True)
        assert "The task was not saved" in unknown.get_data(as_text=True)
    for due in ("1900-01-01", "2283-01-01"):
        implausible = member.post("/customers/c1001/interventions", data={**task, "due_date": due}, follow_redirects=True)
        assert "The task was not saved: Due: Due must be from 2000-01-01 to" in implausible.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Intervention.title)).all() == ["Call the CTO"]
        assert db.session.scalars(select(Feedback.nps)).all() == [9]
    note = {"kind": "note", "title": "Kick-off went well", "body": "", "due_date": "", "assignee": "",
            "csrf_token": token}
    assert member.post("/customers/c1001/interventions", data=note).status_code == 303
    page = member.get("/customers/c1001").get_data(as_text=True)
    assert "Call the CTO" in page and "NPS 9" in page
    # The task's due day and status; the note's nothing but its title (no "· open").
    assert '<span class="badge">task</span> Call the CTO <span class="muted">· due 2026-12-01 · open</span>' in page
    assert '<span class="badge">note</span> Kick-off went well</li>' in page


def test_timeline_pages(app, member):
    with app.app_context():
        customer = db.session.get(Customer, 1)
        for number in range(30):
            db.session.add(Intervention(customer_id=customer.id, kind="note", title=f"Note {number:02d}"))
        db.session.commit()
    first = member.get("/customers/c1001").get_data(as_text=True)
    assert "Older entries" in first
    second = member.get("/customers/c1001/timeline?page=2", headers=HX).get_data(as_text=True)
    assert "<html" not in second and second.count("<li>") >= 10


HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>']


@pytest.mark.parametrize("text", HOSTILE)
def test_what_users_type_is_shown_as_text(app, auth, client, text):
    with app.app_context():
        customer = add(1, organization=text, cohort=text[:50], industry=text)
        customer.onboarding.notes = text
        db.session.add(Intervention(customer_id=customer.id, kind="note", title=text, body=text))
        db.session.add(Feedback(customer_id=customer.id, comment=text, source="call"))
        add_user("owner@example.com", name=text, role="member")
        customer.owner = db.session.scalars(select(User).filter_by(email="owner@example.com")).one()
        db.session.commit()
    auth.login("member")
    for path in ("/customers", "/customers/c1001", "/"):
        page = client.get(path).get_data(as_text=True)
        assert text not in page, path
        assert "&lt;" in page
