"""The inbound endpoints through the Flask test client: GitHub, the metrics API and the landing site."""
import datetime as dt
import json
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select, text

from portal import clock
from portal.health import rollups, settings
from portal.customers import service as customers
from portal.extensions import db
from portal.integrations.signatures import sign
from portal.models import AuditLog, Customer, Engagement, Event, HealthScore, HealthSettings
from tests.conftest import POSTGRES
from tests.test_github_mapping import FIXTURES, fixture

SECRET = "github-test-secret"
LANDING_SECRET = "landing-test-secret"
DAY = dt.date(2019, 5, 15)
LOGINS = ("codertocat", "Octocoders", "octocat", "octo-org")


@pytest.fixture
def app(app):
    app.config.update(GITHUB_WEBHOOK_SECRET=SECRET, LANDING_WEBHOOK_SECRET=LANDING_SECRET)
    return app


def add(login: str, email: str | None = None) -> str:
    customer = customers.add_customer(
        {"email": email or f"{login.lower()}@example.com", "organization": login, "github_username": login}, "test")
    db.session.commit()
    return customer.public_id


@pytest.fixture
def people(ctx):
    """A customer for each login in the fixtures, and settings that match the fixtures' label and branch."""
    settings.update({"trigger_label": "bug", "pr_branch_prefix": "changes"}, "test")
    ids = {login.lower(): add(login) for login in LOGINS}
    db.session.commit()
    return ids


def post_github(client, payload, event, delivery=None, secret=SECRET, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"X-Hub-Signature-256": sign(secret, body), "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "Content-Type": "application/json", **headers}
    return client.post("/webhooks/github", data=body, headers={k: v for k, v in sent.items() if v is not None})


def customer(public_id: str) -> Customer:
    db.session.expire_all()
    return db.session.get(Customer, Customer.key_of(public_id))


def ticked(public_id: str) -> dict:
    onboarding = customer(public_id).onboarding
    return {step: getattr(onboarding, f"{step}_at") for step, done in onboarding.steps().items() if done}


def engagement(public_id: str) -> dict:
    rows = db.session.scalars(select(Engagement).filter_by(customer_id=Customer.key_of(public_id)))
    return {row.date: {c: getattr(row, c) for c in Engagement.COUNTS if getattr(row, c)} for row in rows}


def events() -> list[Event]:
    db.session.expire_all()
    return list(db.session.scalars(select(Event).order_by(Event.id)))


T = dt.timezone.utc
# fixture: (answer, stored outcome, login matched, steps ticked, counts on 2019-05-15)
EXPECTED = {
    "installation.created.json": (200, "processed", "codertocat",
                                  {"github_action_installed": dt.datetime.fromtimestamp(1557933591, T)}, {}),
    "installation.deleted.json": (200, "processed", "octocat", {}, {}),
    "installation_repositories.added.json": (200, "processed", "codertocat", {}, {}),
    "issues.labeled.json": (200, "processed", "codertocat",
                            {"first_issue_tagged": dt.datetime(2019, 5, 15, 15, 20, 18, tzinfo=T)}, {"issues_tagged": 1}),
    "issues.labeled.with-organization.json": (200, "processed", "octocoders",
                                              {"first_issue_tagged": dt.datetime(2019, 5, 15, 15, 20, 18, tzinfo=T)},
                                              {"issues_tagged": 1}),
    "issues.opened.json": (202, "ignored", "codertocat", {}, {}),
    "issues.unlabeled.json": (202, "ignored", "codertocat", {}, {}),
    "ping.json": (200, "ignored", "octocoders", {}, {}),
    "ping.with-organization.json": (200, "ignored", "octocoders", {}, {}),
    "pull_request.closed.json": (200, "processed", "codertocat", {}, {"prs_rejected": 1}),
    "pull_request.closed.with-organization.json": (200, "processed", "octocoders", {}, {"prs_rejected": 1}),
    "pull_request.labeled.json": (202, "ignored", "codertocat", {}, {}),
    "pull_request.opened.json": (200, "processed", "codertocat",
                                 {"first_pr_generated": dt.datetime(2019, 5, 15, 15, 20, 33, tzinfo=T)},
                                 {"prs_generated": 1}),
    "pull_request.opened.with-null-body.json": (200, "processed", "codertocat",
                                                {"first_pr_generated": dt.datetime(2019, 5, 15, 15, 20, 33, tzinfo=T)},
                                                {"prs_generated": 1}),
    "pull_request.opened.with-organization.json": (200, "processed", "octocoders",
                                                   {"first_pr_generated": dt.datetime(2019, 5, 15, 15, 20, 33, tzinfo=T)},
                                                   {"prs_generated": 1}),
    "workflow_run.completed.json": (202, "ignored", "octo-org", {}, {}),
}


def test_every_fixture_is_expected():
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_has_its_effect(client, people, name):
    code, outcome, login, steps, counts = EXPECTED[name]
    response = post_github(client, fixture(name), name.split(".")[0])
    assert response.status_code == code, response.get_json()
    expected_status = "pong" if name.startswith("ping") else ("processed" if outcome == "processed" else outcome)
    assert response.get_json()["status"] == expected_status
    [event] = events()
    assert (event.source, event.outcome, event.customer_id) == ("github", outcome, Customer.key_of(people[login]))
    assert event.payload == fixture(name)
    for other, public_id in people.items():
        assert ticked(public_id) == (steps if other == login else {})
        assert engagement(public_id) == ({DAY: counts} if counts and other == login else {})
    scored = db.session.scalar(select(func.count()).select_from(HealthScore))
    assert scored == (1 if outcome == "processed" else 0)


def test_a_closed_merged_pr_counts_merged_on_the_merge_day(client, people):
    payload = fixture("pull_request.closed.json")
    payload["pull_request"].update(merged=True, merged_at="2019-05-16T01:02:03Z")
    assert post_github(client, payload, "pull_request").status_code == 200
    assert engagement(people["codertocat"]) == {dt.date(2019, 5, 16): {"prs_merged": 1}}


def test_prs_from_other_branches_are_ignored(client, people):
    settings.update({"pr_branch_prefix": "rsolv/"}, "test")
    db.session.commit()
    for name in ("pull_request.opened.json", "pull_request.closed.json"):
        assert post_github(client, fixture(name), "pull_request").status_code == 202
    assert [event.outcome for event in events()] == ["ignored", "ignored"]
    assert engagement(people["codertocat"]) == {}


def test_the_trigger_label_is_the_setting(client, people):
    settings.update({"trigger_label": "rsolv"}, "test")
    db.session.commit()
    assert post_github(client, fixture("issues.labeled.json"), "issues").status_code == 202
    payload = fixture("issues.labeled.json")
    payload["label"]["name"] = "rsolv"
    assert post_github(client, payload, "issues").status_code == 200
    assert engagement(people["codertocat"]) == {DAY: {"issues_tagged": 1}}


def test_counts_add_up_on_the_same_day(client, people):
    for _ in range(3):
        post_github(client, fixture("issues.labeled.json"), "issues")
    assert engagement(people["codertocat"]) == {DAY: {"issues_tagged": 3}}


def test_counts_are_recorded_by_the_event_and_steps_in_the_audit_log(client, people):
    post_github(client, fixture("issues.labeled.json"), "issues")
    audited = db.session.execute(select(AuditLog.table_name, AuditLog.field).where(AuditLog.actor == "github")).all()
    assert sorted(audited) == [("onboarding", "first_issue_tagged"), ("onboarding", "first_issue_tagged_at")]
    assert [(event.event_type, event.customer_id) for event in events()] == [
        ("issues.labeled", Customer.key_of(people["codertocat"]))]


def test_settings_come_with_the_newest_health_settings_and_a_fingerprint(ctx):
    settings.update({"trigger_label": "bug"}, "test")
    db.session.add(HealthSettings(version=2, window_days=14, created_by="test"))
    db.session.flush()
    read = settings.read()
    assert read.portal == settings.current() and read.portal["trigger_label"] == "bug"
    assert (read.health.version, read.health.window_days) == (2, 14)
    now = db.session.execute(select(*settings.fingerprint_columns())).one()
    assert read.fingerprint == tuple(now) and settings.remembered() == read
    settings.update({"pr_branch_prefix": "fix/"}, "test")
    db.session.flush()
    assert tuple(db.session.execute(select(*settings.fingerprint_columns())).one()) != read.fingerprint


def test_settings_read_creates_the_default_health_settings(ctx):
    db.session.execute(HealthSettings.__table__.delete())
    read = settings.read()
    assert read.portal["trigger_label"] == "rsolv" and read.health.version == 1 and read.fingerprint == ()


def test_a_delivery_after_another_process_changed_the_settings_follows_them(client, people):
    post_github(client, fixture("issues.labeled.json"), "issues")  # this process remembers the settings
    with db.engine.begin() as other:  # as another worker would: nothing here forgets what it remembered
        other.execute(text("UPDATE app_settings SET value = 'rsolv', updated_at = :now WHERE key = 'trigger_label'"),
                      {"now": dt.datetime.now(dt.timezone.utc)})
        other.execute(text("INSERT INTO health_settings (version, onboarding_weight, activity_per_day, activity_max, "
                           "success_weight, volume_per_pr, volume_max, champion_min, healthy_min, needs_attention_min, "
                           "window_days, created_at, created_by) SELECT 2, 50, activity_per_day, activity_max, "
                           "success_weight, volume_per_pr, volume_max, champion_min, healthy_min, needs_attention_min, "
                           "window_days, :now, 'test' FROM health_settings WHERE version = 1"),
                      {"now": dt.datetime.now(dt.timezone.utc)})
    assert post_github(client, fixture("issues.labeled.json"), "issues").status_code == 202  # "bug": not the label now
    payload = fixture("issues.labeled.json")
    payload["label"]["name"] = "rsolv"
    assert post_github(client, payload, "issues").status_code == 200
    assert engagement(people["codertocat"]) == {DAY: {"issues_tagged": 2}}
    # An issue tagged on a day already active moves no health: worked out again on the next delivery that does,
    # with the new weights.
    assert snapshot_of(people["codertocat"]).settings_version == 1
    assert post_github(client, fixture("pull_request.opened.json"), "pull_request").status_code == 200
    assert snapshot_of(people["codertocat"]).settings_version == 2


def snapshot_of(public_id: str) -> HealthScore:
    db.session.expire_all()
    return db.session.scalars(select(HealthScore).filter_by(customer_id=Customer.key_of(public_id))).one()


def test_a_duplicate_delivery_changes_nothing(client, people):
    first = post_github(client, fixture("issues.labeled.json"), "issues", delivery="d-1")
    again = post_github(client, fixture("issues.labeled.json"), "issues", delivery="d-1")
    assert first.status_code == 200 and again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert len(events()) == 1
    assert engagement(people["codertocat"]) == {DAY: {"issues_tagged": 1}}


def test_an_unknown_customer_is_stored_as_unmatched(client, ctx):
    settings.update({"trigger_label": "bug"}, "test")
    db.session.commit()
    response = post_github(client, fixture("issues.labeled.json"), "issues")
    assert response.status_code == 202 and response.get_json() == {"status": "unmatched"}
    [event] = events()
    assert (event.outcome, event.customer_id, event.event_type) == ("unmatched", None, "issues.labeled")
    assert db.session.scalar(select(func.count()).select_from(Engagement)) == 0


def test_the_login_is_matched_whatever_its_case(client, ctx):
    public_id = add("CoderToCat")
    settings.update({"trigger_label": "bug"}, "test")
    db.session.commit()
    assert post_github(client, fixture("issues.labeled.json"), "issues").status_code == 200
    assert engagement(public_id) == {DAY: {"issues_tagged": 1}}


@pytest.mark.parametrize("change, code, field", [
    ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, None),
    ({"X-Hub-Signature-256": None}, 401, None),
    ({"X-Hub-Signature-256": "garbage"}, 401, None),
    ({"X-GitHub-Delivery": ""}, 400, "X-GitHub-Delivery"),
    ({"X-GitHub-Delivery": "x" * 121}, 400, "X-GitHub-Delivery"),
    ({"X-GitHub-Delivery": None}, 400, "X-GitHub-Delivery"),
    ({"X-GitHub-Event": ""}, 400, "X-GitHub-Event"),
])
def test_bad_headers(client, people, change, code, field):
    body = json.dumps(fixture("issues.labeled.json")).encode()
    headers = {"X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1",
               "Content-Type": "application/json", **change}
    response = client.post("/webhooks/github", data=body, headers={k: v for k, v in headers.items() if v is not None})
    assert response.status_code == code
    assert "error" in response.get_json()
    assert response.get_json().get("field") == field
    assert events() == []


def test_signed_with_another_secret(client, people):
    assert post_github(client, fixture("ping.json"), "ping", secret="other").status_code == 401


def test_no_secret_configured_answers_503(app, client, people):
    app.config["GITHUB_WEBHOOK_SECRET"] = None
    response = post_github(client, fixture("ping.json"), "ping")
    assert response.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in response.get_json()["error"]


def test_oversize_body_answers_413(client, people):
    body = b'{"a": "' + b"x" * (1024 * 1024) + b'"}'
    response = post_github(client, body, "ping")
    assert response.status_code == 413 and "error" in response.get_json()


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b'{"a": NaN}', b'{"action": "labeled", "a": "\\udc00"}',
                                  b'{"action": "opened", "a": 1e999}'])
def test_malformed_json_answers_400(client, people, body):
    response = post_github(client, body, "issues")
    assert response.status_code == 400 and response.get_json()["field"] == "body"
    assert events() == []


@pytest.mark.parametrize("body, field", [(b'{"action": "a\\u0000b"}', "action"),
                                         (b'{"action": "labeled", "sender": {"login": "x\\\\\\u0000"}}', "sender.login"),
                                         (b'{"labels": [{"name": "ok"}, {"name": "\\u0000"}]}', "labels[1].name"),
                                         (b'{"a\\u0000": 1}', "body"),
                                         ('{"action": "a\\u0000b"}'.encode("utf-16"), "action")])
def test_a_nul_character_anywhere_answers_400_naming_where(client, people, body, field):
    response = post_github(client, body, "issues")
    assert response.status_code == 400 and response.get_json()["field"] == field
    assert "NUL" in response.get_json()["error"] and events() == []


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(client, people):
    body = b'{"action": "opened", "issue": {"title": "a\\\\u0000b"}, "repository": {"owner": {"login": "Codertocat"}}}'
    assert post_github(client, body, "issues").status_code == 202
    assert events()[0].payload["issue"]["title"] == "a\\u0000b"


def test_the_payload_is_stored_as_received(client, people):
    body = '{"action":  "opened",\n "issue": {"title": "caf\u00e9 \\u00e9"}, "repository": {"owner": {"login": "Codertocat"}}}'
    assert post_github(client, body.encode(), "issues").status_code == 202
    stored = db.session.execute(text("SELECT CAST(payload AS TEXT) FROM events")).scalar()
    assert stored == body
    assert events()[0].payload["issue"]["title"] == "caf\u00e9 \u00e9"


@pytest.mark.parametrize("moment", ["1999-12-31T23:59:59Z", "2283-01-01T00:00:00Z", 946684799, 2**40])
def test_a_payload_time_outside_2000_to_tomorrow_answers_400_naming_it(client, people, moment):
    payload = fixture("issues.labeled.json")
    payload["issue"]["updated_at"] = moment
    response = post_github(client, payload, "issues")
    assert response.status_code == 400 and response.get_json()["field"] == "issue.updated_at"
    assert events() == []


def test_a_payload_without_the_time_it_needs_names_the_field(client, people):
    payload = fixture("issues.labeled.json")
    del payload["issue"]["updated_at"]
    response = post_github(client, payload, "issues")
    assert response.status_code == 400 and response.get_json()["field"] == "issue.updated_at"


@pytest.mark.parametrize("method, path, code", [
    ("GET", "/webhooks/github", 405), ("PUT", "/metrics/track", 405),
    ("POST", "/webhooks/nope", 404), ("GET", "/metrics/nope", 404)])
def test_api_paths_answer_json_errors_whatever_the_client_accepts(client, method, path, code):
    response = client.open(path, method=method, headers={"Accept": "text/html"})
    assert response.status_code == code and response.is_json and response.get_json()["error"]
    if code == 405:
        assert "POST" in response.headers["Allow"]


def test_pages_still_answer_html_errors(client):
    response = client.get("/nope", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_github_form_content_type_carries_the_json_in_payload(client, people):
    body = urlencode({"payload": json.dumps(fixture("issues.labeled.json"))}).encode()
    response = post_github(client, body, "issues", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and response.get_json()["status"] == "processed"
    assert engagement(people["codertocat"]) == {DAY: {"issues_tagged": 1}}


@pytest.mark.parametrize("body", [b"payload=1&payload=2", b"other=1", b"payload=%7Bnot+json"])
def test_a_github_form_without_one_json_payload_answers_400(client, people, body):
    response = post_github(client, body, "issues", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and response.get_json()["field"] in ("payload", "body")


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", None])
def test_other_content_types_answer_415_naming_the_expected_one(client, people, content_type):
    response = post_github(client, fixture("ping.json"), "ping", **{"Content-Type": content_type})
    assert response.status_code == 415 and "application/json" in response.get_json()["error"]
    assert events() == []


# The metrics API

@pytest.fixture
def keys(ctx, tracking):
    first, second = add("first-co"), add("second-co")
    return {public_id: tracking("api-key", public_id).output.strip() for public_id in (first, second)}


def track(client, key, body, **headers):
    sent = {"x-api-key": key, **headers} if key is not None else headers
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/metrics/track", data=data, headers=sent, content_type="application/json")


def resolution(public_id, **metadata):
    return {"customer_id": public_id, "event_type": "issue_resolution",
            "metadata": {"issue_url": "https://github.com/o/r/issues/1", "pr_url": None, "success": False,
                         "duration_ms": 1200, **metadata}}


def test_wrong_or_missing_key_answers_401(client, keys):
    public_id = next(iter(keys))
    for key in ("ck_wrong", "", None):
        response = track(client, key, resolution(public_id))
        assert response.status_code == 401 and "error" in response.get_json()
    assert events() == []


def test_another_customers_key_answers_403(client, keys):
    first, second = keys
    response = track(client, keys[second], resolution(first))
    assert response.status_code == 403 and "error" in response.get_json()
    assert events() == []


def test_an_onboarding_step_is_ticked(client, keys):
    public_id = next(iter(keys))
    response = track(client, keys[public_id], {"customer_id": public_id, "event_type": "onboarding_step_account_created"})
    assert response.status_code == 200 and response.get_json()["status"] == "processed"
    assert list(ticked(public_id)) == ["account_created"]
    [event] = events()
    assert (event.source, event.event_type, event.customer_id) == ("action", "onboarding_step_account_created",
                                                                    Customer.key_of(public_id))


@pytest.mark.parametrize("metadata, counts", [
    ({}, {"issues_tagged": 1}),
    ({"pr_url": "https://github.com/o/r/pull/2", "success": True}, {"issues_tagged": 1, "prs_generated": 1, "prs_merged": 1}),
    ({"pr_url": "https://github.com/o/r/pull/2", "success": False},
     {"issues_tagged": 1, "prs_generated": 1, "prs_rejected": 1}),
])
def test_issue_resolution_counts_today(client, keys, metadata, counts):
    public_id = next(iter(keys))
    assert track(client, keys[public_id], resolution(public_id, **metadata)).status_code == 200
    assert engagement(public_id) == {clock.today(): counts}
    assert db.session.scalar(select(HealthScore.prs_generated)) == counts.get("prs_generated", 0)


@pytest.mark.parametrize("how", ["body", "header"])
def test_an_event_id_makes_a_retry_a_no_op(client, keys, how):
    public_id = next(iter(keys))
    body = resolution(public_id)
    headers = {"Idempotency-Key": "retry-1"} if how == "header" else {}
    if how == "body":
        body["event_id"] = "retry-1"
    assert track(client, keys[public_id], body, **headers).status_code == 200
    again = track(client, keys[public_id], body, **headers)
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}
    assert [event.delivery_id for event in events()] == ["retry-1"]
    assert list(engagement(public_id).values()) == [{"issues_tagged": 1}]


def test_without_an_event_id_each_post_is_stored(client, keys):
    public_id = next(iter(keys))
    for _ in range(2):
        track(client, keys[public_id], resolution(public_id))
    assert len({event.delivery_id for event in events()}) == 2


@pytest.mark.parametrize("change, field", [
    ({"customer_id": None}, "customer_id"),
    ({"event_type": "onboarding_step_nonsense"}, "event_type"),
    ({"event_type": "something_else"}, "event_type"),
    ({"metadata": [1]}, "metadata"),
    ({"metadata": {"pr_url": "https://x", "issue_url": "https://y"}}, "metadata.success"),
    ({"metadata": {"pr_url": None}}, "metadata.issue_url"),
    ({"metadata": {"issue_url": "https://y", "duration_ms": "slow"}}, "metadata.duration_ms"),
    ({"event_id": ""}, "event_id"),
])
def test_invalid_track_bodies_name_the_field(client, keys, change, field):
    public_id = next(iter(keys))
    body = {**resolution(public_id), **change}
    response = track(client, keys[public_id], body)
    assert response.status_code == 400 and response.get_json()["field"] == field
    assert events() == []


def test_malformed_track_json(client, keys):
    public_id = next(iter(keys))
    assert track(client, keys[public_id], b"{oops").status_code == 400


# The landing site

def post_landing(client, body, event_id=None, secret=LANDING_SECRET, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"X-Signature-256": sign(secret, raw), "X-Event-Id": event_id or str(uuid.uuid4()), **headers}
    return client.post("/webhooks/landing", data=raw, headers=sent, content_type="application/json")


def signup_body(email="new@example.com", **fields):
    return {"event": "signup", "occurred_at": "2024-03-02T23:30:00Z",
            "customer": {"email": email, "organization": "New Co", "github_username": "new-co", "cohort": "Beta",
                         "industry": "Fintech", "team_size": 12, **fields}}


@pytest.mark.parametrize("moment", ["1971-01-01T00:00:00Z", "1999-12-31T12:00:00Z", "2283-01-01T00:00:00Z"])
def test_a_signup_on_an_implausible_day_answers_400_and_stores_nothing(client, ctx, moment):
    response = post_landing(client, {**signup_body(), "occurred_at": moment})
    assert response.status_code == 400 and response.get_json()["field"] == "occurred_at"
    assert events() == [] and db.session.scalar(select(func.count(Customer.id))) == 0


def test_signup_creates_the_customer(client, ctx):
    response = post_landing(client, signup_body())
    assert response.status_code == 200
    public_id = response.get_json()["customer_id"]
    created = customer(public_id)
    assert (created.email, created.github_username, created.cohort, created.team_size, created.signup_date) == (
        "new@example.com", "new-co", "Beta", 12, dt.date(2024, 3, 2))
    [event] = events()
    assert (event.source, event.event_type, event.outcome, event.customer_id) == ("landing", "signup", "processed",
                                                                                 created.id)


def test_signup_twice_finds_the_customer_by_email(client, ctx):
    first = post_landing(client, signup_body()).get_json()["customer_id"]
    again = post_landing(client, signup_body(email="NEW@Example.com", organization="Renamed"))
    assert again.status_code == 200 and again.get_json()["customer_id"] == first
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1
    assert customer(first).organization == "New Co"
    assert len(events()) == 2


def test_a_duplicate_landing_event_changes_nothing(client, ctx):
    post_landing(client, signup_body(), event_id="e-1")
    again = post_landing(client, signup_body(email="other@example.com", github_username="other"), event_id="e-1")
    assert again.get_json() == {"status": "duplicate"}
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1


@pytest.mark.parametrize("change, field", [
    ({"github_username": "not a login!"}, "github_username"),
    ({"email": "not-an-email"}, "email"),
    ({"team_size": 0}, "team_size"),
    ({"team_size": [3]}, "team_size"),
    ({"organization": ""}, "organization"),
])
def test_a_bad_customer_field_is_named(client, ctx, change, field):
    response = post_landing(client, signup_body(**change))
    assert response.status_code == 400 and response.get_json()["field"] == field
    assert events() == [] and db.session.scalar(select(func.count()).select_from(Customer)) == 0


@pytest.mark.parametrize("body, field", [
    ({"event": "other", "occurred_at": "2024-01-01T00:00:00Z", "customer": {"email": "a@example.com"}}, "event"),
    ({"event": "signup", "occurred_at": "soon", "customer": {"email": "a@example.com"}}, "occurred_at"),
    ({"event": "account_created", "occurred_at": "2024-01-01T00:00:00Z", "customer": "a"}, "customer"),
    ({"event": "account_created", "occurred_at": "2024-01-01T00:00:00Z", "customer": {}}, "email"),
])
def test_bad_landing_bodies_name_the_field(client, ctx, body, field):
    response = post_landing(client, body)
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_account_created_ticks_the_step(client, ctx):
    public_id = add("someone", email="someone@example.com")
    body = {"event": "account_created", "occurred_at": "2024-03-03T10:00:00+02:00",
            "customer": {"email": "Someone@example.com"}}
    response = post_landing(client, body)
    assert response.status_code == 200 and response.get_json()["customer_id"] == public_id
    assert ticked(public_id) == {"account_created": dt.datetime(2024, 3, 3, 8, 0, tzinfo=T)}


def test_account_created_for_an_unknown_email_is_unmatched(client, ctx):
    body = {"event": "account_created", "occurred_at": "2024-03-03T10:00:00Z", "customer": {"email": "who@example.com"}}
    response = post_landing(client, body)
    assert response.status_code == 202 and response.get_json() == {"status": "unmatched"}
    assert [event.outcome for event in events()] == ["unmatched"]


def test_landing_signature_and_configuration(app, client, ctx):
    assert post_landing(client, signup_body(), secret="wrong").status_code == 401
    raw = json.dumps(signup_body()).encode()
    response = client.post("/webhooks/landing", data=raw, headers={"X-Event-Id": "x"})
    assert response.status_code == 401
    response = client.post("/webhooks/landing", data=raw, headers={"X-Signature-256": sign(LANDING_SECRET, raw)},
                           content_type="application/json")
    assert response.status_code == 400 and response.get_json()["field"] == "X-Event-Id"
    app.config["LANDING_WEBHOOK_SECRET"] = ""
    assert post_landing(client, signup_body()).status_code == 503
    assert events() == []


# No input makes any endpoint answer 500.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
TIMES = st.one_of(JSON, st.integers(), st.datetimes().map(lambda moment: moment.isoformat() + "Z"))
HEADER = st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=130))
GITHUB_PATHS = [("action",), ("label", "name"), ("issue", "updated_at"), ("pull_request", "merged"),
                ("pull_request", "head", "ref"), ("pull_request", "created_at"), ("pull_request", "merged_at"),
                ("pull_request", "closed_at"), ("installation", "created_at"), ("installation", "account"),
                ("organization", "login"), ("repository", "owner", "login"), ("issue",), ("pull_request",)]
FUZZ = hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutate(payload: dict, changes: dict) -> dict:
    for path, value in changes.items():
        target = payload
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
    return payload


def body_of(draw_body, signed: bool, secret: str):
    raw = draw_body if isinstance(draw_body, bytes) else json.dumps(draw_body).encode()
    return raw, (sign(secret, raw) if signed else None)


@FUZZ
@given(
    name=st.sampled_from(sorted(EXPECTED)),
    changes=st.dictionaries(st.sampled_from(GITHUB_PATHS), TIMES, max_size=3),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
    signed=st.booleans(),
    event=st.one_of(st.sampled_from(["issues", "pull_request", "installation", "ping", "installation_repositories"]), HEADER),
    delivery=HEADER,
)
def test_github_fuzz(client, people, name, changes, raw, signed, event, delivery):
    body, signature = body_of(raw if raw is not None else mutate(fixture(name), changes), signed, SECRET)
    headers = {"X-Hub-Signature-256": signature, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    response = client.post("/webhooks/github", data=body, headers={k: v for k, v in headers.items() if v is not None})
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=64), JSON, st.fixed_dictionaries(
        {"customer_id": st.sampled_from(["c1001", "c1002", "x"]) | JSON,
         "event_type": st.sampled_from(["issue_resolution", "onboarding_step_account_created"]) | JSON},
        optional={"metadata": st.fixed_dictionaries({}, optional={"issue_url": JSON, "pr_url": JSON, "success": JSON,
                                                                  "duration_ms": JSON}) | JSON,
                  "event_id": HEADER})),
    use_key=st.booleans(),
    idempotency=HEADER,
)
def test_track_fuzz(client, keys, body, use_key, idempotency):
    key = keys["c1001"] if use_key else "ck_guess"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"x-api-key": key, **({"Idempotency-Key": idempotency} if idempotency is not None else {})}
    response = client.post("/metrics/track", data=raw, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=64), JSON, st.fixed_dictionaries(
        {"event": st.sampled_from(["signup", "account_created"]) | JSON, "occurred_at": TIMES,
         "customer": st.fixed_dictionaries({}, optional={name: JSON | HEADER for name in
                                                         ("email", "organization", "github_username", "cohort",
                                                          "industry", "team_size")}) | JSON})),
    signed=st.booleans(),
    event_id=HEADER,
)
def test_landing_fuzz(client, ctx, body, signed, event_id):
    raw, signature = body_of(body, signed, LANDING_SECRET)
    headers = {"X-Signature-256": signature, "X-Event-Id": event_id}
    response = client.post("/webhooks/landing", data=raw, headers={k: v for k, v in headers.items() if v is not None})
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json


@pytest.mark.skipif(not POSTGRES, reason="concurrent deliveries need PostgreSQL (TEST_POSTGRES_URL)")
def test_two_first_deliveries_at_once_tick_the_step_once(app, people, live_server):
    """Both deliveries read the step as not done, then queue on the onboarding row (held here meanwhile): the
    second finds it ticked by the first, so one audit row and the first one's time."""
    payload = fixture("issues.labeled.json")
    payload["label"]["name"] = "bug"
    public_id = people[payload["repository"]["owner"]["login"].lower()]
    onboarding = customer(public_id).onboarding.id
    db.session.commit()

    def send(day: int) -> int:
        payload_of_day = json.loads(json.dumps(payload))
        payload_of_day["issue"]["updated_at"] = f"2019-05-{day}T10:00:00Z"
        body = json.dumps(payload_of_day).encode()
        request = urllib.request.Request(live_server + "/webhooks/github", data=body, method="POST", headers={
            "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    with db.engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM onboarding WHERE id = :id FOR UPDATE"), {"id": onboarding})
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(send, day) for day in (15, 16)]
            waiting = 0
            for _ in range(100):
                waiting = holder.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
                if waiting >= 2:
                    break
                time.sleep(0.05)
            assert waiting >= 2, "both deliveries should be waiting for the onboarding row"
            holder.rollback()
            assert [answer.result() for answer in answers] == [200, 200]
    audited = db.session.scalars(select(AuditLog).where(AuditLog.field == "first_issue_tagged")).all()
    assert len(audited) == 1
    assert sum(day["issues_tagged"] for day in engagement(public_id).values()) == 2


@pytest.mark.skipif(not POSTGRES, reason="concurrent recalculations need PostgreSQL (TEST_POSTGRES_URL)")
def test_a_delivery_that_moves_no_input_does_not_wait_for_a_recalculation_holding_the_customer(app, people,
                                                                                                live_server):
    """A health job's batch holds its customers locked until it commits. A delivery for one of them that leaves the
    score's inputs as they are (another issue tagged once the step is ticked) is answered meanwhile, writing no
    snapshot; one that moves them (a PR generated) waits for the batch, then writes, and the day's rollup still
    adds up to its snapshots."""
    issue = fixture("issues.labeled.json")
    issue["label"]["name"] = "bug"
    public_id = people[issue["repository"]["owner"]["login"].lower()]
    key = Customer.key_of(public_id)
    db.session.commit()

    def send(payload: dict, event: str) -> int:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(live_server + "/webhooks/github", data=body, method="POST", headers={
            "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    assert send(issue, "issues") == 200  # the first: ticks the step, so today's snapshot changes
    today = clock.today()
    written = db.session.scalars(select(HealthScore.calculated_at).filter_by(customer_id=key, date=today)).one()
    db.session.commit()
    with db.engine.connect() as holder, ThreadPoolExecutor(1) as pool:
        holder.execute(text("SELECT id FROM customers WHERE id = :id FOR NO KEY UPDATE"), {"id": key})
        assert pool.submit(send, issue, "issues").result(timeout=20) == 200  # answered while the lock is held
        generated = pool.submit(send, fixture("pull_request.opened.json"), "pull_request")
        waiting = 0
        for _ in range(200):
            waiting = holder.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
            if waiting or generated.done():
                break
            time.sleep(0.05)
        assert waiting >= 1 and not generated.done(), "the PR should wait for the batch holding its customer"
        holder.rollback()
        assert generated.result(timeout=20) == 200
    db.session.expire_all()
    snapshot = db.session.scalars(select(HealthScore).filter_by(customer_id=key, date=today)).one()
    assert snapshot.prs_generated == 1 and snapshot.calculated_at > written
    assert sum(day["issues_tagged"] for day in engagement(public_id).values()) == 2
    assert +rollups.day(today) == +rollups.counted(today, today)[today]
