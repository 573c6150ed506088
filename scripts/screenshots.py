"""Screenshots of the main pages for the README, taken with Debian's chromium on demo data.

Run: .venv/bin/python scripts/screenshots.py   (writes docs/screenshots/*.png)
"""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from portal import commands, create_app, demo
from portal.extensions import db

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "screenshots only"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def demo_app(directory: str):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory}/demo.db", "SECRET_KEY": "screenshots",
                      "SCHEDULER_ENABLED": False})
    with app.app_context():
        upgrade()
        demo.load()
        commands.create_user("admin@example.com", "Ada Admin", "admin", PASSWORD)
        db.session.remove()
    return app


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        server = make_server("127.0.0.1", 0, demo_app(directory), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/login")
            page.screenshot(path=OUT / "login.png")
            page.get_by_label("Email").fill("admin@example.com")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Dashboard").wait_for()
            page.wait_for_timeout(300)  # charts draw without animation, after htmx and Chart.js load
            page.screenshot(path=OUT / "dashboard.png", full_page=True)
            page.goto(base + "/customers")
            page.screenshot(path=OUT / "customers.png", full_page=True)
            page.goto(base + "/customers/c1002")
            page.wait_for_timeout(300)
            page.screenshot(path=OUT / "customer.png", full_page=True)
            page.goto(base + "/events")
            page.screenshot(path=OUT / "events.png")
            page.goto(base + "/analytics")
            page.wait_for_timeout(300)
            for summary in page.locator("details > summary").all():
                summary.click()
            page.screenshot(path=OUT / "analytics.png", full_page=True)
            page.goto(base + "/feedback")
            page.wait_for_timeout(300)
            page.screenshot(path=OUT / "feedback.png", full_page=True)
            page.goto(base + "/tasks?show=all")
            page.screenshot(path=OUT / "tasks.png", full_page=True)
            page.goto(base + "/jobs")
            page.screenshot(path=OUT / "jobs.png", full_page=True)
            page.goto(base + "/emails")
            page.screenshot(path=OUT / "emails.png")
            page.goto(base + "/settings")
            page.screenshot(path=OUT / "settings.png", full_page=True)
            page.goto(base + "/playbooks")
            page.screenshot(path=OUT / "playbooks.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            for name, path in (("customers-phone.png", "/customers"), ("customer-phone.png", "/customers/c1002")):
                page.goto(base + path)
                page.wait_for_timeout(300)
                page.screenshot(path=OUT / name)
            browser.close()
        server.shutdown()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
