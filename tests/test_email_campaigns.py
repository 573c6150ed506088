"""Weekly summaries, the team digest and re-engagement: who gets one, what it says, and never twice."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import delete, select
from portal import batches
from portal.health import settings, snapshots
from portal.customers import service
from portal.emails import campaigns, delivery
from portal.extensions import db
from portal.models import Customer, EmailNotification, Engagement, HealthScore
from tests.conftest import add_user
from tests.email_peers import smtp_app, smtp_server  # noqa: F401  (the app with an SMTP server)

EN = EmailNotification
MONDAY = dt.date(2026, 11, 30)  # the week before is 2026-W48, 23 to 29 November
LATER = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)


def add(name: str, signup=dt.date(2026, 10, 1), status="active", **extra) -> Customer:
    customer = service.add_customer({"email": f"{name}@example.com", "organization": name.title(),
                                     "github_username": name}, "test", signup_date=signup, status=status)
    for field, value in extra.items():
        setattr(customer, field, value)
    db.session.commit()
    return customer


def engage(customer: Customer, day: dt.date, **counts) -> None:
    service.record_engagement(customer, {**dict.fromkeys(Engagement.COUNTS, 0), **counts}, "test", day=day)
    db.session.commit()


def of_kind(kind: str) -> list[EN]:
    db.session.expire_all()
    return list(db.session.scalars(select(EN).filter_by(kind=kind).order_by(EN.id)))


def test_weekly_summaries_go_to_active_subscribed_customers_with_their_week(ctx, smtp_server):
    ada = add("ada")
    engage(ada, dt.date(2026, 11, 24), issues_tagged=3, prs_generated=2, prs_merged=1)
    engage(ada, dt.date(2026, 11, 29), issues_tagged=1, prs_generated=2, prs_merged=2)
    engage(ada, dt.date(2026, 11, 30), issues_tagged=9)  # this week: not in the summary
    snapshots.recalculate([ada.id], dt.date(2026, 11, 29))
    add("bob", status="churned")
    add("cy", unsubscribed_at=LATER)
    add("di", status="paused")
    db.session.commit()

    assert campaigns.queue_weekly_summaries(MONDAY) == 1
    assert campaigns.queue_weekly_summaries(MONDAY) == 0
    [summary] = of_kind("weekly_summary")
    score = db.session.scalars(select(HealthScore).filter_by(customer_id=ada.id)).one()
    assert summary.dedupe_key == "weekly_summary:c1001:2026-W48"
    assert summary.payload == {"week": "2026-W48", "first_day": "2026-11-23", "last_day": "2026-11-29",
                               "issues_tagged": 4, "prs_generated": 4, "prs_merged": 3, "success_rate": 75,
                               "health_score": score.score, "health_status": score.status}

    delivery.deliver_due(LATER)
    [(recipients, message)] = [m for m in smtp_server.messages if m[1]["Subject"] == "Your week with the Action"]
    text = message.get_body(("plain",)).get_content()
    assert recipients == ["ada@example.com"]
    assert "Issues tagged:   4" in text and "Success rate:    75%" in text
    assert "Your next step: Account created, explained at http://portal.test/guide#account_created" in text


def test_the_team_digest_reaches_each_active_member_once_a_week(ctx, smtp_server):
    add_user("lead@example.com", "Lea Lead", "member")
    add_user("gone@example.com", "Gone", "viewer").active = False
    new = add("newco", signup=dt.date(2026, 11, 25))
    done = add("doneco")
    for step in ("account_created", "github_action_installed", "first_issue_tagged", "first_pr_generated",
                 "welcome_email_sent"):
        service.set_step(done, step, True, "test", when=dt.datetime(2026, 11, 26, 12, tzinfo=dt.timezone.utc))
    risky = add("riskco")
    risky.onboarding.blocker_type = "permissions"
    for day, status in ((dt.date(2026, 11, 20), "healthy"), (dt.date(2026, 11, 27), "at_risk")):
        db.session.add(HealthScore(customer_id=risky.id, date=day, score=40, status=status, stage="onboarding",
                                   onboarding_component=Decimal(0), activity_component=Decimal(0),
                                   success_component=Decimal(0), volume_component=Decimal(0), onboarding_percent=0,
                                   days_active=0, success_rate=0, prs_generated=0, prs_merged=0,
                                   settings_version=snapshots.current_settings().version))
    db.session.add(EN(kind="milestone", dedupe_key="x", recipient="x@example.com", status="failed",
                      updated_at=dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)))
    db.session.commit()

    assert campaigns.queue_team_digest(MONDAY) == 1
    assert campaigns.queue_team_digest(MONDAY) == 0
    [digest] = of_kind("team_digest")
    assert (digest.recipient, digest.customer_id, digest.dedupe_key) == ("lead@example.com", None, "team_digest:u1:2026-W48")
    assert digest.payload["signups"] == [[new.public_id, "Newco"]]
    assert digest.payload["completions"] == [[done.public_id, "Doneco"]]
    assert digest.payload["at_risk"] == [[risky.public_id, "Riskco"]]
    assert digest.payload["blockers"] == [["permissions", 1]]
    assert digest.payload["failed_emails"] == 1

    delivery.deliver_due(LATER)
    [message] = [m for r, m in smtp_server.messages if r == ["lead@example.com"]]
    text, html = message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()
    assert "Hello Lea Lead" in text and "Moved into at risk: 1" in text
    assert f"http://portal.test/customers/{risky.public_id}" in text and "List-Unsubscribe" not in message
    assert "http://portal.test/emails?status=failed" in html


def test_reengagement_respects_the_idle_days_the_gap_and_suppression(ctx, smtp_server):
    today = dt.date(2026, 11, 25)
    idle = add("idle")
    engage(idle, dt.date(2026, 11, 15), issues_tagged=1)
    busy = add("busy")
    engage(busy, dt.date(2026, 11, 23), prs_generated=1)
    add("fresh", signup=dt.date(2026, 11, 22))
    add("quiet")  # never active, signed up long ago
    add("unsub", unsubscribed_at=LATER)
    add("churn", status="churned")
    bounced = add("bounce")
    db.session.add(EN(customer_id=bounced.id, kind="milestone", dedupe_key="b", recipient=bounced.email,
                      status="bounced"))
    db.session.commit()

    assert campaigns.queue_reengagement(today) == 3
    assert [e.recipient for e in of_kind("reengagement")] == ["idle@example.com", "quiet@example.com",
                                                               "bounce@example.com"]
    assert of_kind("reengagement")[0].payload == {"days": 10, "last_active": "2026-11-15"}
    assert campaigns.queue_reengagement(today) == 0
    def queued_on(day: dt.date) -> set[str]:
        return {e.recipient.split("@")[0] for e in of_kind("reengagement") if e.dedupe_key.endswith(day.isoformat())}

    # 13 days on, only those who have since gone idle; the others are within 14 days of their last one.
    assert campaigns.queue_reengagement(today + dt.timedelta(days=13)) == 2
    assert queued_on(today + dt.timedelta(days=13)) == {"busy", "fresh"}
    assert campaigns.queue_reengagement(today + dt.timedelta(days=14)) == 3
    assert queued_on(today + dt.timedelta(days=14)) == {"idle", "quiet", "bounce"}

    counts = delivery.deliver_due(LATER + dt.timedelta(days=30))
    assert counts["suppressed"] >= 2  # the bounced customer's two re-engagements
    sent = {r[0] for r, m in smtp_server.messages if m["Subject"] == "We haven't seen you in a while"}
    assert sent == {f"{name}@example.com" for name in ("idle", "quiet", "busy", "fresh")}
    assert {e.last_error for e in of_kind("reengagement") if e.recipient == "bounce@example.com"} == \
        {"suppressed: bounced"}


def test_reengagement_days_is_a_setting(ctx):
    customer = add("idle")
    engage(customer, dt.date(2026, 11, 20), issues_tagged=1)
    assert campaigns.queue_reengagement(dt.date(2026, 11, 25)) == 0
    settings.update({"reengagement_days": "5"}, "test")
    db.session.commit()
    assert campaigns.queue_reengagement(dt.date(2026, 11, 25)) == 1


def test_batches_of_customers_queue_what_one_batch_does_and_a_rerun_queues_nothing(ctx, monkeypatch):
    """Seven customers two at a time: the same summaries, digest and re-engagements as all at once, and a second
    run adds none. The digest names the first two who moved into at risk, found across batches."""
    add_user("lead@example.com", "Lea Lead", "member")
    people = [add(f"p{number}", status="churned" if number == 6 else "active",
                  unsubscribed_at=LATER if number == 7 else None) for number in range(1, 8)]
    for number, person in enumerate(people, 1):
        for day, status in ((dt.date(2026, 11, 20), "healthy" if number % 2 else "at_risk"),
                            (dt.date(2026, 11, 27), "at_risk" if number in (1, 3, 4, 5) else "healthy")):
            db.session.add(HealthScore(customer_id=person.id, date=day, score=40 + number, status=status,
                                       stage="onboarding", onboarding_component=Decimal(0),
                                       activity_component=Decimal(0), success_component=Decimal(0),
                                       volume_component=Decimal(0), onboarding_percent=0, days_active=0,
                                       success_rate=0, prs_generated=0, prs_merged=0,
                                       settings_version=snapshots.current_settings().version))
        if number <= 4:
            engage(person, dt.date(2026, 11, 24), issues_tagged=number, prs_generated=number, prs_merged=1)
    db.session.commit()
    monkeypatch.setattr(campaigns, "LISTED", 2)

    def run() -> tuple[int, int, int]:
        return (campaigns.queue_weekly_summaries(MONDAY), campaigns.queue_team_digest(MONDAY),
                campaigns.queue_reengagement(MONDAY))

    def queued() -> list[tuple]:
        db.session.expire_all()
        return [(email.dedupe_key, email.recipient, email.customer_id, email.payload) for email in db.session.scalars(
            select(EN).where(EN.kind != "milestone").order_by(EN.dedupe_key))]

    monkeypatch.setattr(batches, "BATCH", 2)
    assert run() == (5, 1, 1)
    in_batches = queued()
    assert run() == (0, 0, 0)
    db.session.execute(delete(EN).where(EN.kind != "milestone"))
    db.session.commit()
    monkeypatch.setattr(batches, "BATCH", 1000)
    assert run() == (5, 1, 1)
    assert queued() == in_batches
    [digest] = of_kind("team_digest")
    assert digest.payload["at_risk"] == [[people[0].public_id, "P1"], [people[2].public_id, "P3"]]
    assert [email.customer_id for email in of_kind("reengagement")] == [people[4].id]
