"""The jobs page in a real browser: run-now shows the run's progress move, then its end, without a reload."""
import threading
import time

import pytest
from playwright.sync_api import Page, expect

from portal.jobs.registry import Job
from portal.jobs.scheduler import scheduler

from .conftest import add_user, sign_in_browser

pytestmark = pytest.mark.browser


def test_run_now_shows_live_progress_then_the_outcome(page: Page, live_server, app):
    step, finish = threading.Event(), threading.Event()

    def work(context):
        context.progress(1, 4)
        step.wait(10)
        time.sleep(0.6)  # past the progress writer's throttle (two writes a second at most)
        context.progress(3, 4)
        finish.wait(10)
        return {"items": 4}

    scheduler.registry(app).add(Job("probe", "Counts to four.", "Every minute", {"minute": "*"}, work))
    with app.app_context():
        add_user()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in_browser(page, live_server)
    page.goto(live_server + "/jobs")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    card = page.locator("#job-probe")
    try:
        card.get_by_role("button", name="Run now").click()
        expect(card.get_by_role("status").filter(has_text="1 of 4")).to_be_visible()
        step.set()
        expect(card.get_by_text("3 of 4")).to_be_visible()
        finish.set()
        expect(card.locator(".outcome-succeeded")).to_be_visible()
        expect(page.locator("#job-runs")).to_contain_text("Items 4")  # the runs list refreshed itself
        assert page.evaluate("window.sameDocument") is True and errors == []
    finally:
        step.set()
        finish.set()
        scheduler.wait(app, timeout=10)
