"""The events log, the unmatched events and their assignment, and the customer's metrics-API key."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from portal.health import settings
from portal.customers import service
from portal.events.queries import sender
from portal.extensions import db
from portal.models import AuditLog, Customer, Engagement, Event
from tests.test_integrations import DAY, SECRET, fixture, post_github

from .conftest import csrf_token

HX = {"HX-Request": "true"}
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def app(app):
    app.config.update(GITHUB_WEBHOOK_SECRET=SECRET)
    return app


def add(number: int) -> Customer:
    return service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                 "github_username": f"org-{number}"}, "test")


def event(number: int, source="github", event_type="issues.labeled", outcome="processed", customer_id=None, **payload):
    return Event(source=source, delivery_id=f"d{number}", event_type=event_type, outcome=outcome,
                 customer_id=customer_id, payload=payload or {"n": number},
                 received_at=T0 + dt.timedelta(minutes=number))


@pytest.fixture
def seeded(ctx):
    """Two customers; 60 processed GitHub events for c1001, three unmatched, one action event for c1002."""
    first, second = add(1), add(2)
    db.session.add_all(event(n, customer_id=first.id) for n in range(60))
    db.session.add_all([
        event(60, outcome="unmatched", installation={"account": {"login": "Stranger-Org"}}),
        event(61, source="landing", event_type="account_created", outcome="unmatched",
              customer={"email": "who@example.net"}),
        event(62, source="email_provider", event_type="delivered", outcome="unmatched", email="bounce@example.org"),
        event(63, source="action", event_type="onboarding_step_account_created", customer_id=second.id),
    ])
    db.session.commit()


@pytest.fixture
def member(auth):
    auth.login("member")
    return auth.client


@pytest.fixture
def viewer(auth):
    auth.login("viewer")
    return auth.client


def rows(response) -> int:
    return response.get_data(as_text=True).count('href="/events/') - response.get_data(as_text=True).count(
        'href="/events/unmatched"')


def test_pages_need_sign_in(client, seeded):
    for path in ("/events", "/events/1", "/events/unmatched"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_viewer_reads_but_cannot_assign_or_issue_keys(viewer, seeded):
    for path in ("/events", "/events/1", "/events/unmatched", "/customers/c1001"):
        assert viewer.get(path).status_code == 200
    page = viewer.get("/events/unmatched").get_data(as_text=True)
    assert "Assign</button>" not in page
    assert "Create key" not in viewer.get("/customers/c1001").get_data(as_text=True)
    token = csrf_token(viewer, "/events")
    assert viewer.post("/events/61/assign", data={"csrf_token": token, "customer_id": "c1001"}).status_code == 403
    assert viewer.post("/customers/c1001/api-key", data={"csrf_token": token}).status_code == 403
    assert db.session.get(Event, 61).outcome == "unmatched"
    assert db.session.get(Customer, 1).api_key_hash is None


@pytest.mark.parametrize("path, data", [("/events/61/assign", {"customer_id": "c1001"}),
                                        ("/customers/c1001/api-key", {})])
def test_posts_without_the_csrf_token_are_refused(member, seeded, path, data):
    assert member.post(path, data=data).status_code == 400
    db.session.expire_all()
    assert db.session.get(Event, 61).outcome == "unmatched"
    assert db.session.get(Customer, 1).api_key_hash is None


def test_the_log_is_newest_first_fifty_a_page(member, seeded):
    first = member.get("/events")
    text = first.get_data(as_text=True)
    assert first.status_code == 200 and rows(first) == 50
    assert "64 in all · page 1 of 2" in text
    assert text.index('href="/events/64"') < text.index('href="/events/63"')  # newest first
    assert 'href="/customers/c1001"' in text and 'href="/customers/c1002"' in text
    second = member.get("/events?page=2")
    assert rows(second) == 14 and "page 2 of 2" in second.get_data(as_text=True)
    assert rows(member.get("/events?page=999")) == 14  # past the end: the last page
    assert rows(member.get("/events?customer=c1001&page=2")) == 10
    assert rows(member.get("/events?customer=c1001&page=2")) == 10


def test_a_long_log_counts_up_to_the_cap_and_pages_through_the_first(member, seeded, monkeypatch):
    monkeypatch.setattr("portal.pages.COUNT_CAP", 60)  # as with 10,000 deliveries: the count stops at the cap
    text = member.get("/events").get_data(as_text=True)
    assert "More than 60 · page 1 of the first 2 (filter to narrow)" in text and "in all" not in text
    assert rows(member.get("/events?page=9")) == 14  # past the cap: the last page within it
    assert "3 in all" in member.get("/events?outcome=unmatched", headers=HX).get_data(as_text=True)


@pytest.mark.parametrize("query, count", [
    ("source=landing", 1), ("source=email_provider", 1), ("source=github", 61), ("source=nonsense", 64),
    ("type=account_created", 1), ("type=issues.labeled", 61), ("outcome=unmatched", 3),
    ("outcome=processed&source=action", 1), ("customer=c1002", 1), ("customer=C1001", 60),
    ("customer=c9999", 0), ("customer=<b>", 0),
])
def test_the_log_filters(member, seeded, query, count):
    response = member.get(f"/events?{query}", headers=HX)
    assert response.status_code == 200 and f"{count} in all" in response.get_data(as_text=True)
    assert rows(response) == min(count, 50)


def test_the_log_is_a_page_or_a_fragment(member, seeded):
    page = member.get("/events?source=landing")
    assert "<html" in page.get_data(as_text=True) and "HX-Request" in page.headers["Vary"]
    assert 'hx-push-url="true"' in page.get_data(as_text=True)
    fragment = member.get("/events?source=landing", headers=HX)
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'id="events-table"' in text and "HX-Request" in fragment.headers["Vary"]
    assert "<html" in member.get("/events", headers={**HX, "HX-Boosted": "true"}).get_data(as_text=True)
    # The pager keeps the filters.
    assert "customer=c1001" in member.get("/events?customer=c1001", headers=HX).get_data(as_text=True)


def test_the_event_page_shows_its_payload_escaped(member, ctx):
    db.session.add(event(1, title="<script>alert(1)</script>", nested={"a": [1, 2]}))
    db.session.commit()
    response = member.get("/events/1")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<pre>" in text and '&#34;nested&#34;: {\n    &#34;a&#34;: [' in text
    assert member.get("/events/999").status_code == 404


def test_sender_names_the_login_or_email():
    assert sender("github", {"installation": {"account": {"login": "Octo"}}, "organization": {"login": "x"}}) == "Octo"
    assert sender("github", {"organization": {"login": "Org"}, "repository": {"owner": {"login": "own"}}}) == "Org"
    assert sender("github", {"repository": {"owner": {"login": "own"}}}) == "own"
    assert sender("landing", {"customer": {"email": "a@b.c"}}) == "a@b.c"
    assert sender("email_provider", {"email": "d@e.f"}) == "d@e.f"
    assert sender("email_provider", [{"email": "g@h.i"}]) == "g@h.i"
    for source, payload in (("github", {"installation": "x"}), ("landing", []), ("action", {"email": "x"}),
                            ("email_provider", []), ("github", {"organization": {"login": 5}})):
        assert sender(source, payload) == ""


def test_the_unmatched_list_names_who_sent_each_event(member, seeded):
    text = member.get("/events/unmatched").get_data(as_text=True)
    for shown in ("Stranger-Org", "who@example.net", "bounce@example.org", 'href="/events/61"'):
        assert shown in text
    assert text.count("Assign</button>") == 3
    assert 'href="/events/1"' not in text
    for page in ("²", "9" * 5000, "0", "abc"):  # not a page number: the first page
        assert member.get(f"/events/unmatched?page={page}").get_data(as_text=True).count("Assign</button>") == 3


def labeled_issue_unmatched(client) -> int:
    settings.update({"trigger_label": "bug"}, "test")
    db.session.commit()
    assert post_github(client, fixture("issues.labeled.json"), "issues").status_code == 202
    return db.session.scalars(select(Event.id)).one()


def test_assigning_applies_the_event_once(member, ctx):
    customer = add(1)
    db.session.commit()
    event_id = labeled_issue_unmatched(member)
    token = csrf_token(member, "/events/unmatched")
    response = member.post(f"/events/{event_id}/assign", data={"csrf_token": token, "customer_id": "C1001 "})
    assert response.status_code == 303 and response.headers["Location"].endswith("/events/unmatched")
    db.session.expire_all()
    stored = db.session.get(Event, event_id)
    assert (stored.outcome, stored.customer_id) == ("processed", customer.id)
    onboarding = db.session.get(Customer, customer.id).onboarding
    assert onboarding.first_issue_tagged
    assert onboarding.first_issue_tagged_at == dt.datetime(2019, 5, 15, 15, 20, 18, tzinfo=dt.timezone.utc)
    [row] = db.session.scalars(select(Engagement)).all()
    assert (row.date, row.issues_tagged) == (DAY, 1)
    audited = db.session.scalars(select(AuditLog).where(AuditLog.table_name == "events")).all()
    assert {(entry.actor, entry.field, entry.new_value) for entry in audited} == {
        ("Member User", "customer", "c1001"), ("Member User", "outcome", "processed")}
    assert "applied to Org 1" in member.get("/events/unmatched").get_data(as_text=True)

    again = member.post(f"/events/{event_id}/assign", data={"csrf_token": token, "customer_id": "c1001"},
                        follow_redirects=True)
    assert "is not unmatched any more; nothing changed" in again.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(Engagement.issues_tagged)).all() == [1]
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.table_name == "events")) == 2
    timeline = member.get("/customers/c1001").get_data(as_text=True)
    assert "github: issues.labeled" in timeline


@pytest.mark.parametrize("customer_id", ["c9999", "", "nonsense", "1001"])
def test_assigning_to_an_unknown_customer_changes_nothing(member, ctx, customer_id):
    add(1)
    db.session.commit()
    event_id = labeled_issue_unmatched(member)
    token = csrf_token(member, "/events/unmatched")
    response = member.post(f"/events/{event_id}/assign", data={"csrf_token": token, "customer_id": customer_id})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "No customer has the id" in text and 'aria-invalid="true"' in text
    db.session.expire_all()
    assert db.session.get(Event, event_id).outcome == "unmatched"
    assert db.session.scalar(select(func.count()).select_from(Engagement)) == 0
    assert member.post("/events/999/assign", data={"csrf_token": token, "customer_id": "c1001"}).status_code == 404


def track(client, key):
    body = {"customer_id": "c1001", "event_type": "onboarding_step_account_created", "metadata": {}}
    return client.post("/metrics/track", data=json.dumps(body), headers={"x-api-key": key},
                       content_type="application/json")


def test_the_api_key_is_shown_once_and_replaces_the_old_one(member, ctx, tracking):
    add(1)
    db.session.commit()
    old = tracking("api-key", "c1001").output.strip()
    page = member.get("/customers/c1001").get_data(as_text=True)
    assert 'id="api-key"' in page and "Rotate key" in page and old not in page
    token = csrf_token(member, "/customers/c1001")
    response = member.post("/customers/c1001/api-key", data={"csrf_token": token}, headers=HX)
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in text and response.headers["Cache-Control"] == "no-store"
    [key] = [word for word in text.replace("<", " ").replace(">", " ").split() if word.startswith("ck_")]
    assert "will not be shown again" in text
    db.session.expire_all()
    assert db.session.get(Customer, 1).api_key_hash not in (None, key) and len(db.session.get(Customer, 1).api_key_hash) == 64
    assert key not in member.get("/customers/c1001").get_data(as_text=True)
    assert track(member, old).status_code == 401
    assert track(member, key).status_code == 200
    audited = db.session.scalars(select(AuditLog).where(AuditLog.field == "api_key")).all()
    assert [(entry.actor, entry.new_value) for entry in audited] == [("cli", "issued"), ("Member User", "issued")]
    # Without htmx the key comes in a whole page.
    whole = member.post("/customers/c1001/api-key", data={"csrf_token": token}).get_data(as_text=True)
    assert "<html" in whole and "will not be shown again" in whole
    assert member.post("/customers/c9999/api-key", data={"csrf_token": token}).status_code == 404


def test_a_customer_without_a_key_can_get_one(member, ctx):
    add(1)
    db.session.commit()
    assert "Create key" in member.get("/customers/c1001").get_data(as_text=True)
    token = csrf_token(member, "/customers/c1001")
    text = member.post("/customers/c1001/api-key", data={"csrf_token": token}, headers=HX).get_data(as_text=True)
    key = text.split("<code class=\"secret\">")[1].split("</code>")[0]
    assert track(member, key).status_code == 200


def test_the_nav_links_to_the_events(member, seeded):
    assert 'href="/events" aria-current="page"' in member.get("/events").get_data(as_text=True)


def test_assigning_a_landing_event_ticks_account_created(member, seeded):
    db.session.get(Event, 62).payload = {"event": "account_created", "occurred_at": "2026-03-01T10:00:00Z",
                                         "customer": {"email": "who@example.net"}}
    db.session.commit()
    token = csrf_token(member, "/events/unmatched")
    assert member.post("/events/62/assign", data={"csrf_token": token, "customer_id": "c1002"}).status_code == 303
    db.session.expire_all()
    onboarding = db.session.get(Customer, 2).onboarding
    assert onboarding.account_created_at == dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc)


def test_an_event_that_cannot_be_applied_changes_nothing(member, seeded):
    db.session.get(Event, 61).payload = {"action": "labeled", "label": {"name": "rsolv"}}  # no issue.updated_at
    db.session.commit()
    token = csrf_token(member, "/events/unmatched")
    response = member.post("/events/61/assign", data={"csrf_token": token, "customer_id": "c1001"}, follow_redirects=True)
    assert "could not be applied" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Event, 61).outcome == "unmatched"
    assert db.session.scalar(select(func.count()).select_from(Engagement)) == 0
