"""Who may call what, for every route of the app's URL map: anonymous, viewer, member and admin.

Each route has an entry below; a route added without one fails test_every_route_has_an_entry, so a new page or
endpoint cannot ship without its access rule being decided and checked.
"""
from __future__ import annotations

import pytest

from portal.customers import service as customers
from portal.extensions import db

from ..conftest import csrf_token

ROLES = ("anonymous", "viewer", "member", "admin")
# (endpoint, method): who may call it. "public": anyone; "signed": anyone, and the request's signature or key
# decides (401 or 503 without them); "token": a scraper's bearer token, the route off (404) while none is set.
ACCESS = {
    ("auth.login", "GET"): "public", ("auth.login", "POST"): "public",
    ("auth.logout", "POST"): "viewer", ("auth.logout_everywhere", "POST"): "viewer",
    ("monitoring.metrics", "GET"): "token",
    ("probes.healthz", "GET"): "public", ("probes.readyz", "GET"): "public",
    ("static", "GET"): "public",
    ("emails_public.guide", "GET"): "public",
    ("emails_public.nps_answer", "GET"): "public", ("emails_public.confirm_nps_answer", "POST"): "public",
    ("emails_public.nps_comment", "POST"): "public",
    ("emails_public.unsubscribe", "GET"): "public", ("emails_public.confirm_unsubscribe", "POST"): "public",
    ("integrations.github_webhook", "POST"): "signed", ("integrations.landing_webhook", "POST"): "signed",
    ("integrations.email_events_webhook", "POST"): "signed", ("integrations.metrics_track", "POST"): "signed",
    ("dashboard.index", "GET"): "viewer",
    ("customers.index", "GET"): "viewer", ("customers.detail", "GET"): "viewer",
    ("customers.timeline_page", "GET"): "viewer", ("customers.cell", "GET"): "viewer",
    ("customers.edit_cell", "GET"): "member", ("customers.save_cell", "POST"): "member",
    ("customers.new", "GET"): "member", ("customers.new", "POST"): "member",
    ("customers.bulk", "POST"): "member", ("customers.toggle_step", "POST"): "member",
    ("customers.save_details", "POST"): "member", ("customers.add_intervention", "POST"): "member",
    ("customers.add_feedback", "POST"): "member", ("customers.sentiment", "POST"): "member",
    ("customers.override", "POST"): "member",
    ("customers.confirm_erase", "GET"): "admin", ("customers.erase", "POST"): "admin",
    ("events.index", "GET"): "viewer", ("events.unmatched", "GET"): "viewer", ("events.detail", "GET"): "viewer",
    ("events.assign", "POST"): "member", ("events.api_key", "POST"): "member",
    ("emails.index", "GET"): "viewer", ("emails.detail", "GET"): "viewer", ("emails.html_part", "GET"): "viewer",
    ("emails.resend", "POST"): "member", ("emails.send_survey", "POST"): "member",
    ("tasks.index", "GET"): "viewer", ("tasks.complete", "POST"): "member", ("tasks.snooze", "POST"): "member",
    ("playbooks.index", "GET"): "viewer", ("playbooks.detail", "GET"): "viewer",
    ("playbooks.new", "GET"): "member", ("playbooks.new", "POST"): "member",
    ("playbooks.edit", "GET"): "member", ("playbooks.edit", "POST"): "member",
    ("playbooks.start", "POST"): "member", ("playbooks.toggle", "POST"): "member",
    ("analytics.index", "GET"): "viewer", ("analytics.migration_customers", "GET"): "viewer",
    ("analytics.download", "GET"): "viewer",
    ("feedback.index", "GET"): "viewer", ("feedback.download", "GET"): "viewer",
    ("transfer.import_page", "GET"): "viewer", ("transfer.import_file", "POST"): "member",
    ("transfer.export_page", "GET"): "viewer", ("transfer.export_zip", "GET"): "viewer",
    ("transfer.export_csv", "GET"): "viewer",
    ("admin.settings", "GET"): "admin", ("admin.settings", "POST"): "admin",
    ("admin.users", "GET"): "admin", ("admin.users", "POST"): "admin",
    ("admin.change_role", "POST"): "admin", ("admin.change_active", "POST"): "admin",
    ("jobs.index", "GET"): "admin", ("jobs.detail", "GET"): "admin", ("jobs.run_now", "POST"): "admin",
}
# Values for the routes' variable parts: rows that exist where a view needs one to reach its checks, and names no
# job, playbook or user has where a call would otherwise start or change something for real.
ARGUMENTS = {"customer_id": "c1001", "step": "account_created", "field": "organization", "token": "not-a-token",
             "filename": "css/portal.css", "user_id": 2147483647, "playbook_id": 2147483647, "task_id": 2147483647,
             "email_id": 2147483647, "event_id": 2147483647}
NAMES = {"analytics.download": "funnel", "feedback.download": "nps_by_month", "transfer.export_csv": "customers",
         "jobs.detail": "no-such-job", "jobs.run_now": "no-such-job"}
# Signing out ends the client's session: it goes last.
LAST = {"auth.logout", "auth.logout_everywhere"}
# POSTs that take no CSRF token: senders sign their requests, and mail clients unsubscribe in one click.
NO_CSRF = {"integrations.github_webhook", "integrations.landing_webhook", "integrations.email_events_webhook",
           "integrations.metrics_track", "emails_public.confirm_unsubscribe"}


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) of every route, sign-out last."""
    found = []
    for rule in app.url_map.iter_rules():
        values = {name: NAMES.get(rule.endpoint, ARGUMENTS.get(name, "x")) for name in rule.arguments}
        path = rule.build(values, append_unknown=False)[1]
        found.extend((rule.endpoint, method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return sorted(found, key=lambda route: (route[0] in LAST, route))


def test_every_route_has_an_entry(app):
    assert {(endpoint, method) for endpoint, method, _ in routes(app)} ^ set(ACCESS) == set()


def allowed(required: str, role: str) -> bool:
    return required in ("public", "signed", "token") or (role != "anonymous" and ROLES.index(role) >= ROLES.index(required))


@pytest.fixture
def seeded(app):
    with app.app_context():
        customers.add_customer({"email": "ada@example.com", "organization": "Ada", "github_username": "ada"}, "test")
        db.session.commit()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_what_it_may_and_nothing_else(app, auth, seeded, role):
    client = auth.client
    if role != "anonymous":
        auth.login(role)
    token = csrf_token(client, "/login")
    wrong = []
    for endpoint, method, path in routes(app):
        required = ACCESS[(endpoint, method)]
        response = client.open(path, method=method, headers={"X-CSRFToken": token}, data={"csrf_token": token})
        status, location = response.status_code, response.headers.get("Location", "")
        response.close()
        if required == "token":
            if status != 404:
                wrong.append((endpoint, method, status))
        elif required == "signed":
            if status not in (401, 503):  # no signature, or no secret configured to check one with
                wrong.append((endpoint, method, status))
        elif status >= 500:
            wrong.append((endpoint, method, status))
        elif allowed(required, role):
            if status in (401, 403) or (status == 302 and "/login" in location and endpoint not in LAST):
                wrong.append((endpoint, method, status))
        elif role == "anonymous":
            if not (status == 302 and location.startswith("/login")):
                wrong.append((endpoint, method, status))
        elif status != 403:
            wrong.append((endpoint, method, status))
    assert wrong == []


def test_every_form_post_needs_the_csrf_token(app, auth, seeded):
    auth.login("admin")
    missing = []
    for endpoint, method, path in routes(app):
        if method != "POST" or endpoint in NO_CSRF or endpoint in LAST:
            continue
        response = auth.client.post(path, data={"value": "x"})
        if response.status_code != 400 or "CSRF" not in response.get_data(as_text=True):
            missing.append((endpoint, response.status_code))
    assert missing == []
