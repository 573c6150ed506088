"""The customers table and the customer page in a real browser: Debian's chromium driven by Playwright."""
import re

import pytest
from playwright.sync_api import Page, expect
from portal.health import metrics
from portal.customers import service
from portal.extensions import db

from .conftest import add_user, sign_in_browser

pytestmark = pytest.mark.browser


@pytest.fixture
def signed_in(app, page: Page, live_server):
    with app.app_context():
        add_user(role="member", email="member@example.com", name="Mia Member")
        for number in range(1, 61):
            customer = service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number:03d}",
                                             "github_username": f"org-{number}", "cohort": "VIP" if number % 3 else "GA"},
                                            actor="test")
            for step in metrics.STEPS[:number % 4]:
                service.set_step(customer, step, True, actor="test")
        db.session.commit()
    sign_in_browser(page, live_server, "member@example.com")
    return live_server


def rows(page: Page):
    return page.locator("#customer-table tbody tr")


def test_search_filter_sort_and_page(page: Page, signed_in):
    page.goto(signed_in + "/customers")
    expect(rows(page)).to_have_count(50)
    page.get_by_role("link", name="Next").click()
    expect(rows(page)).to_have_count(10)
    expect(page).to_have_url(re.compile(r"page=2"))
    page.get_by_label("Search").fill("org 05")
    expect(rows(page)).to_have_count(10)
    expect(page).to_have_url(re.compile(r"q=org(%20|\+)05"))
    page.get_by_label("Cohort", exact=True).select_option("GA")
    expect(rows(page)).to_have_count(3)
    expect(page).to_have_url(re.compile(r"cohort=GA"))  # the filtered table, with its own sort links, is in
    page.get_by_role("link", name="Organization").click()
    expect(page).to_have_url(re.compile(r"dir=desc"))
    expect(rows(page).first).to_contain_text("Org 057")
    page.reload()
    expect(rows(page)).to_have_count(3)
    expect(rows(page).first).to_contain_text("Org 057")
    page.go_back()
    expect(rows(page).first).to_contain_text("Org 051")
    expect(page.locator("[id=customer-table]")).to_have_count(1)  # swapped in place, never nested


def test_edit_a_cell_in_place_and_it_persists(page: Page, signed_in):
    page.goto(signed_in + "/customers?q=org%20001")
    page.locator("td[data-cell]", has_text="Org 001").click()
    editor = page.get_by_label("Organization of Org 001")
    expect(editor).to_be_focused()  # the editor takes the focus once it is live
    editor.fill("Acme Robotics")
    editor.press("Enter")
    expect(page.locator("td[data-cell]", has_text="Acme Robotics")).to_be_visible()
    size = page.locator("tr", has_text="Acme Robotics").locator("td[data-cell=team_size]")
    size.focus()
    size.press("Enter")
    expect(page.get_by_label("Team size of Acme Robotics")).to_be_focused()
    page.get_by_label("Team size of Acme Robotics").fill("0")
    page.get_by_label("Team size of Acme Robotics").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("at least 1")
    page.get_by_label("Team size of Acme Robotics").press("Escape")
    expect(size).to_have_text("1")
    page.goto(signed_in + "/customers?q=acme")
    expect(page.locator("td[data-cell]", has_text="Acme Robotics")).to_be_visible()


def test_toggle_a_step_and_the_health_card_changes_without_a_reload(page: Page, signed_in):
    page.goto(signed_in + "/customers/c1004")
    card = page.locator("#health-card")
    expect(card).to_contain_text("0 of 5 steps (0%)")
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Account created").check()
    expect(card).to_contain_text("1 of 5 steps (20%)")
    expect(page.locator("#stage-badge")).to_have_text("Onboarding")
    page.get_by_label("Blocker").select_option("permissions")
    expect(page.locator("#details-state")).to_contain_text("Saved at")
    assert page.evaluate("window.notReloaded") is True
    page.reload()
    expect(page.get_by_label("Account created")).to_be_checked()
    expect(page.get_by_label("Blocker")).to_have_value("permissions")


def test_customer_page_charts_draw_without_console_errors(page: Page, signed_in):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(signed_in + "/customers/c1003")
    expect(page.locator("canvas[data-chart][data-drawn=true]")).to_have_count(2)
    assert errors == []


def test_bulk_change_of_selected_rows(page: Page, signed_in):
    page.goto(signed_in + "/customers?q=org%2000")
    page.get_by_label("Select Org 001").check()
    page.get_by_label("Select Org 002").check()
    page.get_by_label("Selected rows:").select_option("status:paused")
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.get_by_role("status")).to_contain_text("Set status for 2 customer(s).")
    expect(page.locator("tr", has_text="Org 001").locator("td[data-cell=status]")).to_have_text("Paused")
    expect(page.locator("tr", has_text="Org 003").locator("td[data-cell=status]")).to_have_text("Active")


def test_upload_an_import_with_a_bad_row_and_see_its_line_errors(page: Page, signed_in, tmp_path):
    bad = tmp_path / "engagement.csv"
    bad.write_text("id,customer_id,date,issues_tagged,prs_generated,prs_merged,prs_rejected,support_requests\n"
                   ",c1001,2026-01-05,1,1,1,0,0\n,c1001,2026-02-30,1,1,1,0,0\n,c9999,2026-01-06,1,-2,0,0,0\n")
    page.goto(signed_in + "/import")
    page.get_by_label("Export zip or CSV file").set_input_files(bad)
    page.get_by_role("button", name="Import").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("2 bad lines in engagement.csv")
    expect(result.locator("li")).to_have_count(2)
    expect(result.locator("li").nth(0)).to_contain_text("engagement.csv line 3: date")
    expect(result.locator("li").nth(1)).to_contain_text("line 4: customer_id: unknown customer c9999")
    good = tmp_path / "good" / "engagement.csv"
    good.parent.mkdir()
    good.write_text("id,customer_id,date,issues_tagged,prs_generated,prs_merged,prs_rejected,support_requests\n"
                    ",c1001,2026-01-05,1,1,1,0,0\n")
    page.get_by_label("Export zip or CSV file").set_input_files(good)
    page.get_by_role("button", name="Import").click()
    expect(result.get_by_role("row", name="engagement.csv")).to_contain_text("1")


def test_edit_the_profile_in_place(page: Page, signed_in):
    page.goto(signed_in + "/customers/c1005")
    page.locator("dd[data-cell=industry]").click()
    editor = page.get_by_label("Industry of Org 005")
    expect(editor).to_be_focused()
    editor.fill("Robotics")
    editor.press("Enter")
    expect(page.locator("dd[data-cell=industry]")).to_have_text("Robotics")
    page.reload()
    expect(page.locator("dd[data-cell=industry]")).to_have_text("Robotics")
