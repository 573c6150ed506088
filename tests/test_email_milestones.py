"""Milestone emails are queued exactly once by whatever reaches the milestone: portal, CLI, import, webhooks."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from portal.health import settings
from portal.customers import service
from portal.extensions import db
from portal.models import EmailNotification
from portal.transfer import imports
from tests.conftest import csrf_token
from tests.test_github_mapping import fixture
from tests.test_integrations import LANDING_SECRET, SECRET, post_github, post_landing, signup_body

EN = EmailNotification


@pytest.fixture
def app(app):
    app.config.update(GITHUB_WEBHOOK_SECRET=SECRET, LANDING_WEBHOOK_SECRET=LANDING_SECRET)
    return app


def queued() -> list[str]:
    db.session.expire_all()
    return [key for key in db.session.scalars(select(EN.dedupe_key).order_by(EN.id))]


def add(email="ada@example.com", login="ada-labs") -> str:
    customer = service.add_customer({"email": email, "organization": "Ada Labs", "github_username": login}, "test")
    db.session.commit()
    return customer.public_id


def test_a_new_customer_from_the_portal_or_the_cli_is_welcomed(ctx, client, auth, tracking):
    auth.login("member")
    form = {"email": "new@example.com", "organization": "New", "github_username": "new-co", "team_size": "3",
            "signup_date": "2026-11-20", "csrf_token": csrf_token(client, "/customers/new")}
    assert client.post("/customers/new", data=form).status_code == 303
    result = tracking("add-customer", "cli@example.com", "Cli Co", "cli-co", "Beta", "Tech", "2")
    assert result.exit_code == 0, result.output
    assert queued() == ["milestone:c1001:welcome", "milestone:c1002:welcome"]


def test_portal_toggle_queues_the_step_milestone_once(ctx, client, auth):
    public_id = add()
    auth.login("member")
    token = csrf_token(client, f"/customers/{public_id}")
    for done in ("true", "false", "true"):
        response = client.post(f"/customers/{public_id}/onboarding/account_created", data={"done": done},
                               headers={"X-CSRFToken": token, "HX-Request": "true"})
        assert response.status_code == 200
    assert queued() == ["milestone:c1001:welcome", "milestone:c1001:account_created"]


def test_cli_steps_queue_milestones_and_completion_once(ctx, tracking):
    public_id = add()
    for step in ("account_created", "github_action_installed", "first_issue_tagged", "first_pr_generated",
                 "first_pr_generated", "welcome_email_sent"):
        assert tracking("update-onboarding", public_id, step, "true").exit_code == 0
    # Ticking the welcome step by hand queues no second welcome, but it completes onboarding.
    assert queued() == [f"milestone:c1001:{m}" for m in ("welcome", "account_created", "github_action_installed",
                                                          "first_issue_tagged", "first_pr_generated",
                                                          "onboarding_completed")]
    assert tracking("update-onboarding", public_id, "first_pr_generated", "false").exit_code == 0
    assert tracking("update-onboarding", public_id, "first_pr_generated", "true").exit_code == 0
    assert len(queued()) == 6


CUSTOMERS = ("id,email,organization,github_username,signup_date,cohort,industry,team_size,status\n"
             "c1001,ada@example.com,Ada Labs,ada-labs,2026-11-01,Beta,Tech,3,active\n"
             "c1002,bob@example.com,Bob Co,bob-co,2026-11-01,Beta,Tech,3,active\n")
ONBOARDING = ("id,customer_id,welcome_email_sent,account_created,github_action_installed,first_issue_tagged,"
              "first_pr_generated,completed_date,days_to_complete,blocker_type,notes\n"
              "o1001,c1001,false,true,true,false,false,,,none,\n"
              "o1002,c1002,true,true,true,true,true,,,none,\n")


def import_files(**files) -> None:
    imports.import_files({name.replace("_", "."): io.StringIO(text, newline="") for name, text in files.items()})
    db.session.commit()


def test_import_queues_welcomes_for_new_customers_and_milestones_for_steps_it_ticks(ctx):
    import_files(customers_csv=CUSTOMERS, onboarding_csv=ONBOARDING)
    # Bob's file says he was welcomed already: no welcome for him, but the steps and completion the import ticked.
    assert sorted(queued()) == sorted([
        "milestone:c1001:welcome", "milestone:c1001:account_created", "milestone:c1001:github_action_installed",
        "milestone:c1002:account_created", "milestone:c1002:github_action_installed",
        "milestone:c1002:first_issue_tagged", "milestone:c1002:first_pr_generated",
        "milestone:c1002:onboarding_completed"])
    before = queued()
    import_files(customers_csv=CUSTOMERS, onboarding_csv=ONBOARDING)  # the same files again: nothing new
    assert queued() == before
    import_files(onboarding_csv=ONBOARDING.replace("o1001,c1001,false,true,true,false", "o1001,c1001,false,true,true,true"))
    assert queued() == [*before, "milestone:c1001:first_issue_tagged"]


def test_landing_signup_queues_the_welcome_in_the_events_transaction(ctx, client):
    response = post_landing(client, signup_body(), event_id="signup-1")
    assert response.status_code == 200
    assert queued() == ["milestone:c1001:welcome"]
    assert post_landing(client, signup_body(), event_id="signup-1").status_code == 200  # duplicate delivery
    account = {"event": "account_created", "occurred_at": "2024-03-03T10:00:00Z", "customer": {"email": "new@example.com"}}
    assert post_landing(client, account, event_id="account-1").status_code == 200
    assert post_landing(client, account, event_id="account-2").status_code == 200  # the step is already ticked
    assert queued() == ["milestone:c1001:welcome", "milestone:c1001:account_created"]


def test_github_installation_queues_the_action_installed_milestone(ctx, client):
    add("codertocat@example.com", "codertocat")
    settings.update({"trigger_label": "bug", "pr_branch_prefix": "changes"}, "test")
    db.session.commit()
    for delivery in ("d1", "d2"):
        assert post_github(client, fixture("installation.created.json"), "installation", delivery).status_code == 200
    assert post_github(client, fixture("issues.labeled.json"), "issues").status_code == 200
    assert queued() == ["milestone:c1001:welcome", "milestone:c1001:github_action_installed",
                        "milestone:c1001:first_issue_tagged"]
