"""Erasure: none of a customer's personal strings is left anywhere in the database, its anonymous figures stay, only
admins may erase, and the retention rule erases churned customers when it is turned on."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from portal import audit, batches
from portal.health import settings, snapshots
from portal.customers import erasure, service
from portal.extensions import db
from portal.feedback import service as feedback_service
from portal.jobs import runs
from portal.jobs.scheduler import scheduler
from portal.transfer import exports, imports
from portal.models import (
    Assessment, AuditLog, Customer, EmailNotification, Engagement, Event, Feedback, HealthScore, Intervention,
    JobRun, Onboarding,
)

from . import seed
from .conftest import csrf_token

EMAIL, OLD_EMAIL = "jane.roe@erasure-target.example", "old.jane@erasure-target.example"
ORGANIZATION, LOGIN = "Roe Widgets Erasure", "roe-widgets-gh"
PERSONAL = [EMAIL, OLD_EMAIL, ORGANIZATION, LOGIN, "Jane Roe", "555-0199", "Roe wants SSO"]


def target_customer() -> Customer:
    """A customer whose personal data is in every place the portal keeps any."""
    customer = service.add_customer({"email": EMAIL, "organization": ORGANIZATION, "github_username": LOGIN,
                                     "cohort": "Beta", "industry": "SaaS", "team_size": "5"}, "cli")
    service.set_step(customer, "account_created", True, "cli")
    service.set_details(customer, "permissions", "Call Jane Roe on 555-0199", "Dana Ortiz")
    service.update_fields(customer, {"organization": f"{ORGANIZATION} Ltd", "status": "churned"}, "Dana Ortiz")
    service.record_engagement(customer, {"issues_tagged": 3, "prs_generated": 2, "prs_merged": 1}, "cli")
    service.issue_api_key(customer, "cli")
    audit.record("import", "customers", customer.public_id, {"email": (OLD_EMAIL, EMAIL)})
    db.session.add(Intervention(customer_id=customer.id, kind="note", title="Talked to Jane Roe",
                                body="Jane Roe's cell is 555-0199"))
    feedback_service.record(customer, {"nps": 9, "csat": 4, "comment": "Jane Roe loves the PRs",
                                       "feature_request": "Roe wants SSO", "bug_report": "", "source": "call"}, "Dana")
    db.session.add(Assessment(customer_id=customer.id, band_override="at_risk", override_reason="Jane Roe left",
                              override_until=dt.date(2030, 1, 1), override_by="Dana Ortiz"))
    db.session.add_all([
        Event(source="github", delivery_id="target-1", event_type="issues", customer_id=customer.id,
              payload={"sender": {"login": LOGIN}, "organization": {"login": LOGIN}}),
        Event(source="landing", delivery_id="target-2", event_type="signup", outcome="unmatched",
              payload={"customer": {"email": EMAIL.upper(), "organization": ORGANIZATION}}),
        EmailNotification(kind="team_digest", dedupe_key="team_digest:u1:target", recipient="lead@example.com",
                          subject="Weekly digest", body_text=f"New signups: {ORGANIZATION} Ltd, Acme",
                          body_html=f"<li>{ORGANIZATION} Ltd</li><li>Acme</li>",
                          payload={"signups": [f"{ORGANIZATION} Ltd", "Acme"]}),
    ])
    db.session.execute(update(EmailNotification).where(EmailNotification.customer_id == customer.id,
                                                       EmailNotification.kind == "milestone")
                       .values(status="sent", subject="Welcome, Jane Roe", body_text=f"Hello {ORGANIZATION}",
                               body_html=f"<p>Hello {ORGANIZATION}</p>", last_error=f"bounced for {EMAIL}"))
    snapshots.recalculate([customer.id])
    db.session.commit()
    return customer


def everything_stored() -> str:
    """Every value of every column of every table, as text."""
    values = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            values.extend(str(value) for value in row if value is not None)
    return "\n".join(values).lower()


def figures(customer_id: int) -> dict:
    """What erasure keeps: the counts, the scores and their history, and the status changes."""
    def rows(statement):
        return [tuple(row) for row in db.session.execute(statement)]

    steps = [getattr(Onboarding, step) for step in ("welcome_email_sent", "account_created", "github_action_installed",
                                                    "first_issue_tagged", "first_pr_generated")]
    return {
        "engagement": rows(select(Engagement.__table__).where(Engagement.customer_id == customer_id)
                           .order_by(Engagement.id)),
        "health": rows(select(HealthScore.__table__).where(HealthScore.customer_id == customer_id)
                       .order_by(HealthScore.id)),
        "scores": rows(select(Feedback.nps, Feedback.csat, Feedback.source, Feedback.created_at)
                       .where(Feedback.customer_id == customer_id)),
        "steps": rows(select(*steps, Onboarding.completed_date, Onboarding.blocker_type)
                      .where(Onboarding.customer_id == customer_id)),
        "customer": rows(select(Customer.signup_date, Customer.cohort, Customer.industry, Customer.team_size,
                                Customer.status, Customer.owner_id).where(Customer.id == customer_id)),
        "statuses": rows(select(AuditLog.actor, AuditLog.old_value, AuditLog.new_value, AuditLog.created_at)
                         .where(AuditLog.field == "status")),
        "others": rows(select(Customer.id, Customer.email, Customer.organization).where(Customer.id != customer_id)
                       .order_by(Customer.id)),
    }


def test_no_personal_string_of_an_erased_customer_is_left_and_its_figures_stay(ctx, tracking):
    seed.every_table()
    customer = target_customer()
    key, public_id = customer.id, customer.public_id
    stored = everything_stored()
    assert all(text.lower() in stored for text in PERSONAL)
    before = figures(key)
    db.session.remove()

    result = tracking("erase", public_id, "--yes")
    assert result.exit_code == 0 and result.output == f"{public_id} erased\n"

    stored = everything_stored()
    left = [text for text in PERSONAL if text.lower() in stored]
    assert left == []
    assert figures(key) == before
    erased = db.session.get(Customer, key)
    assert (erased.email, erased.organization) == (f"erased-{public_id}@invalid", f"Erased customer {public_id}")
    assert erased.github_username is None and erased.api_key_hash is None and erased.erased_at is not None
    digest = db.session.scalars(select(EmailNotification).where(EmailNotification.kind == "team_digest",
                                                                EmailNotification.dedupe_key.like("%target"))).one()
    assert digest.body_text == "New signups: (erased), Acme"  # the other customer's name stays
    assert not db.session.scalar(select(EmailNotification.id).where(EmailNotification.customer_id == key,
                                                                    EmailNotification.status == "queued"))
    record = db.session.execute(select(AuditLog.actor, AuditLog.field, AuditLog.old_value, AuditLog.new_value)
                                .where(AuditLog.record_id == public_id).order_by(AuditLog.id.desc())).first()
    assert tuple(record) == ("cli", "erased", None, "personal data erased")


def test_erasing_from_the_command_line_refuses_bad_input_in_one_line(ctx, tracking):
    customer = target_customer()
    public_id = customer.public_id
    db.session.remove()
    for args, message in [(("erase", "c9999", "--yes"), "unknown customer 'c9999'"),
                          (("erase", public_id), "erasing cannot be undone: add --yes to erase without a question")]:
        result = tracking(*args)
        assert result.exit_code == 1 and result.output == f"customer-tracking: {message}\n"
    assert db.session.scalar(select(Customer.erased_at).where(Customer.email == EMAIL)) is None
    assert tracking("erase", public_id, "--yes").exit_code == 0
    again = tracking("erase", public_id, "--yes")
    assert again.exit_code == 1 and "was already erased on" in again.output and len(again.output.splitlines()) == 1


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_admins_may_erase(app, client, auth, role):
    with app.app_context():
        public_id = target_customer().public_id
    auth.login(role)
    page = client.get(f"/customers/{public_id}").get_data(as_text=True)
    assert "Erase personal data" not in page
    assert client.get(f"/customers/{public_id}/erase").status_code == 403
    token = csrf_token(client, f"/customers/{public_id}")
    assert client.post(f"/customers/{public_id}/erase", data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(Customer.erased_at).where(Customer.email == EMAIL)) is None


def test_an_admin_confirms_then_erases_and_is_audited(app, client, auth):
    with app.app_context():
        public_id = target_customer().public_id
    auth.login("admin")
    assert f'href="/customers/{public_id}/erase"' in client.get(f"/customers/{public_id}").get_data(as_text=True)
    confirm = client.get(f"/customers/{public_id}/erase").get_data(as_text=True)
    assert "will lose for good" in confirm and 'name="csrf_token"' in confirm
    assert client.post(f"/customers/{public_id}/erase", data={}).status_code == 400  # no CSRF token: nothing erased
    with app.app_context():
        assert db.session.scalar(select(Customer.erased_at).where(Customer.email == EMAIL)) is None
    token = csrf_token(client, f"/customers/{public_id}/erase")
    response = client.post(f"/customers/{public_id}/erase", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == f"/customers/{public_id}"
    page = client.get(f"/customers/{public_id}").get_data(as_text=True)
    assert "was erased" in page and "Erased on" in page and ORGANIZATION not in page
    with app.app_context():
        row = db.session.execute(select(AuditLog.actor, AuditLog.user_id, AuditLog.new_value)
                                 .where(AuditLog.field == "erased")).one()
        assert row.actor == "Admin User" and row.user_id is not None and row.new_value == "personal data erased"


def churned(days_ago: int, number: int, now: dt.datetime) -> int:
    customer = service.add_customer({"email": f"gone{number}@example.com", "organization": f"Gone {number}",
                                     "github_username": f"gone-{number}"}, "cli")
    service.update_fields(customer, {"status": "churned"}, "Dana Ortiz")
    db.session.flush()
    db.session.execute(update(AuditLog).where(AuditLog.record_id == customer.public_id, AuditLog.field == "status")
                       .values(created_at=now - dt.timedelta(days=days_ago)))
    return customer.id


def test_the_retention_rule_erases_customers_churned_longer_ago_and_is_off_by_default(app, ctx):
    now = dt.datetime.now(dt.timezone.utc)
    long_ago, recently = churned(40, 1, now), churned(10, 2, now)
    active = service.add_customer({"email": "here@example.com", "organization": "Here", "github_username": "here"},
                                  "cli").id
    db.session.commit()
    job = scheduler.registry(app).get("erase_churned")
    assert runs.run(job, "manual", now) == "succeeded"
    settings.update({"erase_churned_after_days": "30"}, "Admin User")
    db.session.commit()
    assert runs.run(job, "manual", now) == "succeeded"
    counts = db.session.scalars(select(JobRun.counts).where(JobRun.job == "erase_churned").order_by(JobRun.id)).all()
    assert counts == [{"erased": 0}, {"erased": 1}]
    erased = {key for key, in db.session.execute(select(Customer.id).where(Customer.erased_at.is_not(None)))}
    assert erased == {long_ago} and recently not in erased and active not in erased
    row = db.session.execute(select(AuditLog.actor, AuditLog.new_value).where(AuditLog.field == "erased")).one()
    assert tuple(row) == ("retention rule", "personal data erased: churned more than 30 days ago")


def test_the_retention_rule_erases_batch_by_batch_and_a_rerun_erases_none(ctx, monkeypatch):
    now = dt.datetime.now(dt.timezone.utc)
    due = [churned(40 + number, number, now) for number in range(1, 6)]
    recently = churned(10, 9, now)
    db.session.commit()
    monkeypatch.setattr(batches, "BATCH", 2)
    assert erasure.erase_churned(30, "retention rule", now) == 5
    erased = {key for key, in db.session.execute(select(Customer.id).where(Customer.erased_at.is_not(None)))}
    assert erased == set(due) and recently not in erased
    assert erasure.erase_churned(30, "retention rule", now) == 0


def test_the_retention_setting_is_on_the_settings_page_and_refuses_a_negative_number(app, client, auth):
    from .test_admin import DEFAULTS

    auth.login("admin")
    assert "Erase churned customers after (days)" in client.get("/settings").get_data(as_text=True)
    data = {**DEFAULTS, "erase_churned_after_days": "-1", "csrf_token": csrf_token(client, "/settings")}
    page = client.post("/settings", data=data).get_data(as_text=True)
    assert '<p class="field-error" id="erase_churned_after_days-error">' in page
    response = client.post("/settings", data={**data, "erase_churned_after_days": "90"})
    assert response.status_code == 303
    with app.app_context():
        assert settings.get("erase_churned_after_days") == 90


def test_an_import_never_brings_erased_data_back_and_an_export_after_erasure_imports_unchanged(ctx, tmp_path):
    customer = target_customer()
    before = tmp_path / "before.zip"
    exports.write_zip(before)
    erasure.erase(customer, "cli")
    db.session.commit()
    imports.import_path(before, actor="import")
    db.session.commit()
    assert [text for text in PERSONAL if text.lower() in everything_stored()] == []

    after = tmp_path / "after.zip"
    exports.write_zip(after)
    result = imports.import_path(after, actor="import")
    assert not result.created and not result.updated
    db.session.rollback()


def test_flask_customers_erase_is_the_same_command(app, runner):
    with app.app_context():
        customer = service.add_customer({"email": "gone@example.com", "organization": "Gone Co",
                                         "github_username": "gone-co"}, "test")
        db.session.commit()
        public_id = customer.public_id
    refused = runner.invoke(args=["customers", "erase", public_id])  # no terminal to ask on
    assert refused.exit_code == 1 and "add --yes" in refused.output
    unknown = runner.invoke(args=["customers", "erase", "c9999", "--yes"])
    assert unknown.exit_code == 1
    result = runner.invoke(args=["customers", "erase", public_id, "--yes"])
    assert result.exit_code == 0 and f"{public_id} erased" in result.output
    with app.app_context():
        assert db.session.get(Customer, Customer.key_of(public_id)).email != "gone@example.com"
