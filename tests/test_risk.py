"""Risk signals: each rule on hand-made histories, its threshold from the settings, and where they show."""
import datetime as dt

import pytest

from portal import analytics
from portal.health import risk, settings, snapshots
from portal.customers import service
from portal.extensions import db
from portal.models import AuditLog, Event, Feedback

TODAY = dt.date(2026, 11, 25)


def add(number, signup=TODAY - dt.timedelta(days=60), status="active"):
    return service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                 "github_username": f"org-{number}"}, actor="test", signup_date=signup, status=status)


def days_ago(days):
    return TODAY - dt.timedelta(days=days)


def kinds(found, customer):
    return [signal.kind for signal in found.get(customer.id, [])]


@pytest.mark.parametrize("recent, before, raised", [
    ((5, 5), (1, 9), True),     # 50%, up from 10%
    ((5, 5), None, True),       # 50%, nothing closed before
    ((4, 6), (0, 10), False),   # 40%: under the threshold
    ((5, 5), (6, 4), False),    # 50%, but down from 60%
    ((0, 0), (5, 0), False),    # nothing closed lately
])
def test_rejections_rising(recent, before, raised):
    assert risk.rejections_rising(recent, before or (0, 0), 50) is raised


def test_inactivity_counts_issues_and_prs_only_and_spares_new_and_churned_customers(ctx):
    idle, busy, merged_only, new, churned = add(1), add(2), add(3), add(4, signup=days_ago(5)), add(5, status="churned")
    service.record_engagement(idle, {"issues_tagged": 1}, actor="test", day=days_ago(20))
    service.record_engagement(busy, {"prs_generated": 1}, actor="test", day=days_ago(3))
    service.record_engagement(merged_only, {"prs_merged": 2, "support_requests": 1}, actor="test", day=days_ago(1))
    db.session.commit()
    found = risk.signals([c.id for c in (idle, busy, merged_only, new, churned)], TODAY)
    assert kinds(found, idle) == ["inactive"] and "since 2026-11-05" in found[idle.id][0].detail
    assert kinds(found, merged_only) == ["inactive"]
    assert busy.id not in found and new.id not in found and churned.id not in found
    settings.update({"risk_inactive_days": "30"}, actor="test")
    assert idle.id not in risk.signals([idle.id], TODAY)


def test_rejections_over_the_last_fourteen_days(ctx):
    customer = add(1)
    service.record_engagement(customer, {"prs_rejected": 3, "prs_merged": 1}, actor="test", day=days_ago(2))
    service.record_engagement(customer, {"prs_rejected": 1, "prs_merged": 3}, actor="test", day=days_ago(20))
    service.record_engagement(customer, {"prs_rejected": 9}, actor="test", day=days_ago(40))  # outside both windows
    db.session.commit()
    [signal] = [s for s in risk.signals([customer.id], TODAY)[customer.id] if s.kind == "rejections"]
    assert signal.detail == "75% of PRs closed in the last 14 days were rejected, up from 25% (threshold 50%)."
    settings.update({"risk_rejection_percent": "80"}, actor="test")
    assert "rejections" not in kinds(risk.signals([customer.id], TODAY), customer)


def test_a_blocker_counts_from_when_it_was_set(ctx):
    old, fresh = add(1), add(2)
    service.set_details(old, "permissions", "", actor="test")
    service.set_details(fresh, "billing", "", actor="test")
    db.session.flush()
    long_ago = dt.datetime(2026, 11, 10, 9, tzinfo=dt.timezone.utc)
    db.session.query(AuditLog).filter(AuditLog.record_id == old.onboarding.public_id).update({"created_at": long_ago})
    db.session.commit()
    found = risk.signals([old.id, fresh.id], TODAY)
    assert "blocker" in kinds(found, old) and "permissions since 2026-11-10 (15 days)" in found[old.id][-1].detail
    assert "blocker" not in kinds(found, fresh)


def test_the_latest_nps_answer_and_the_latest_installation_event_decide(ctx):
    detractor, recovered, uninstalled, reinstalled = add(1), add(2), add(3), add(4)
    db.session.add_all([Feedback(customer_id=detractor.id, nps=9), Feedback(customer_id=detractor.id, nps=4),
                        Feedback(customer_id=recovered.id, nps=3), Feedback(customer_id=recovered.id, nps=8)])
    at = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    for number, (customer, actions) in enumerate(((uninstalled, ("created", "deleted")),
                                                  (reinstalled, ("deleted", "created")))):
        for index, action in enumerate(actions):
            db.session.add(Event(source="github", delivery_id=f"d-{number}-{index}", event_type="installation",
                                 customer_id=customer.id, payload={"action": action},
                                 received_at=at + dt.timedelta(hours=index)))
    for customer in (detractor, recovered, uninstalled, reinstalled):  # keep inactivity out of the picture
        service.record_engagement(customer, {"issues_tagged": 1}, actor="test", day=TODAY)
    db.session.commit()
    found = risk.signals(None, TODAY)
    assert found[detractor.id][0].detail.startswith("Answered NPS 4 on")
    assert found[uninstalled.id][0].kind == "uninstalled"
    assert recovered.id not in found and reinstalled.id not in found


def test_signals_show_on_the_customer_page_and_the_dashboard(ctx, client, auth):
    customer = add(1, signup=dt.date.today() - dt.timedelta(days=60))
    db.session.add(Feedback(customer_id=customer.id, nps=2))
    db.session.commit()
    auth.login("viewer")
    page = client.get(f"/customers/{customer.public_id}").get_data(as_text=True)
    assert "Risk signals" in page and "Detractor" in page and "No Action activity" in page
    board = client.get("/").get_data(as_text=True)
    assert "1 customer(s) with a signal" in board and "Org 1" in board


def test_the_dashboard_overview_counts_everyone_and_lists_those_with_most_signals_first(ctx):
    customers = [add(number) for number in (3, 1, 2, 4)]  # all inactive: no engagement for 60 days
    add(5, status="churned")
    for customer in customers[2:]:
        db.session.add(Feedback(customer_id=customer.id, nps=2))  # a detractor too: two signals
    db.session.commit()
    snapshots.recalculate(today=TODAY)
    overview = analytics.signal_overview(TODAY, listed=3)
    assert overview.totals["inactive"] == 4 and overview.totals["detractor"] == 2 and overview.signalled == 4
    # Most signals first, then the lowest score, then the first signed up.
    assert [customer.organization for customer, _ in overview.listed] == ["Org 2", "Org 4", "Org 3"]
    assert [len(signals) for _, signals in overview.listed] == [2, 2, 1]
