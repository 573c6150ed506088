"""The first pages in a real browser: Debian's chromium driven by Playwright."""
import re

import pytest
from playwright.sync_api import Page, expect

from portal.customers import service
from portal.extensions import db
from portal.models import Event

from .conftest import add_user, sign_in_browser

pytestmark = pytest.mark.browser


@pytest.fixture
def seeded(app):
    with app.app_context():
        add_user()
        service.add_customer({"email": "ops@acme.example", "organization": "Acme Robotics",
                              "github_username": "acme"}, actor="test")
        db.session.commit()


def test_sign_in_then_see_the_dashboard(page: Page, live_server, seeded):
    page.goto(live_server + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("heading", name="At risk (1)")).to_be_visible()
    expect(page.get_by_role("cell", name="Acme Robotics")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))


def test_pages_load_no_blocked_resources(page: Page, live_server, seeded):
    """The strict CSP blocks nothing the pages need (a blocked style or script logs a console error)."""
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in_browser(page, live_server)
    assert errors == []


def test_dashboard_charts_draw_without_console_errors(page: Page, live_server, seeded):
    """Every canvas[data-chart] is drawn by portal.js from its JSON config (it then sets data-drawn)."""
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in_browser(page, live_server)
    charts = page.locator("canvas[data-chart]")
    expect(charts).to_have_count(5)
    for index in range(5):
        expect(charts.nth(index)).to_have_attribute("data-drawn", "true")
        expect(charts.nth(index)).to_have_attribute("aria-label", re.compile(r"chart"))
        assert charts.nth(index).bounding_box()["height"] > 100
    expect(page.get_by_role("img", name=re.compile("onboarding step"))).to_be_visible()
    assert errors == []


def test_events_filter_as_you_type(page: Page, live_server, app):
    """Typing in a filter field narrows the events log without pressing Apply, and the URL follows."""
    with app.app_context():
        add_user()
        db.session.add_all([Event(source="github", delivery_id=f"d{number}", event_type=event_type, payload={})
                            for number, event_type in enumerate(["issues.labeled", "pull_request.opened", "ping"])])
        db.session.commit()
    sign_in_browser(page, live_server)
    page.goto(live_server + "/events")
    expect(page.locator("#events-table tbody tr")).to_have_count(3)
    page.get_by_label("Type").fill("pull_request")
    expect(page.locator("#events-table tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"type=pull_request"))
    page.get_by_label("Outcome").select_option("unmatched")
    expect(page.get_by_text("No event matches.")).to_be_visible()
