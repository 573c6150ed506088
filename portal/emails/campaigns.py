"""The scheduled emails: weekly summaries, the team's weekly digest, re-engagement. Each queues and commits.

Each query is set-based: one statement finds every recipient with what their email says, and one
INSERT ... ON CONFLICT DO NOTHING queues them, so running a job twice queues nothing new.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select

from .. import clock
from ..health import metrics, settings
from ..extensions import db
from ..models import Customer, EmailNotification, Engagement, HealthScore, Onboarding, User, format_id
from . import content, outbox

EN = EmailNotification
REENGAGEMENT_GAP = dt.timedelta(days=14)
LISTED = 50  # customers named per section of the digest


def moment(today: dt.date) -> dt.datetime:
    """The queue time of a job run for `today`: now, or that morning when a test or a catch-up names another day."""
    if today == clock.today():
        return clock.now()
    return dt.datetime.combine(today, dt.time(9), tzinfo=clock.zone()).astimezone(dt.timezone.utc)


def latest_status(before: dt.date):
    """Each customer's health status on their latest snapshot before the given day."""
    last = (select(HealthScore.customer_id, func.max(HealthScore.date).label("date"))
            .where(HealthScore.date < before).group_by(HealthScore.customer_id).subquery())
    return (select(HealthScore.customer_id, HealthScore.status, HealthScore.score)
            .join(last, and_(last.c.customer_id == HealthScore.customer_id, last.c.date == HealthScore.date))
            .subquery())


def queue_weekly_summaries(today: dt.date) -> int:
    """Each active, subscribed customer's week (the ISO week that ended before today)."""
    first, last = content.previous_week(today)
    week = content.iso_week(first)
    totals = (select(Engagement.customer_id, *(func.sum(getattr(Engagement, count)).label(count)
                                               for count in ("issues_tagged", "prs_generated", "prs_merged")))
              .where(Engagement.date.between(first, last)).group_by(Engagement.customer_id).subquery())
    health = latest_status(today)
    query = (select(Customer.id, Customer.email, health.c.score, health.c.status,
                    *(func.coalesce(totals.c[count], 0).label(count)
                      for count in ("issues_tagged", "prs_generated", "prs_merged")))
             .outerjoin(totals, totals.c.customer_id == Customer.id)
             .outerjoin(health, health.c.customer_id == Customer.id)
             .where(Customer.status == "active", Customer.unsubscribed_at.is_(None)).order_by(Customer.id))
    queued_at = moment(today)
    rows = [{"customer_id": row.id, "kind": "weekly_summary", "recipient": row.email, "queued_at": queued_at,
             "dedupe_key": f"weekly_summary:{format_id('c', row.id)}:{week}",
             "payload": {"week": week, "first_day": first.isoformat(), "last_day": last.isoformat(),
                         "issues_tagged": int(row.issues_tagged), "prs_generated": int(row.prs_generated),
                         "prs_merged": int(row.prs_merged),
                         "success_rate": metrics.success_rate(int(row.prs_merged), int(row.prs_generated)),
                         "health_score": row.score, "health_status": row.status}}
            for row in db.session.execute(query)]
    count = outbox.queue_rows(rows)
    db.session.commit()
    return count


def named(query) -> list[list[str]]:
    return [[format_id("c", key), organization] for key, organization in db.session.execute(query.limit(LISTED))]


def digest_of(first: dt.date, last: dt.date) -> dict:
    """What the team's digest says about a week."""
    people = select(Customer.id, Customer.organization).order_by(Customer.id)
    before, after = latest_status(first), latest_status(last + dt.timedelta(days=1))
    moved = (people.join(after, after.c.customer_id == Customer.id)
             .outerjoin(before, before.c.customer_id == Customer.id)
             .where(after.c.status == "at_risk", or_(before.c.status.is_(None), before.c.status != "at_risk")))
    blockers = (select(Onboarding.blocker_type, func.count(Onboarding.id)).join(Customer)
                .where(Onboarding.blocker_type != "none", Onboarding.completed_date.is_(None),
                       Customer.status == "active")
                .group_by(Onboarding.blocker_type).order_by(func.count(Onboarding.id).desc(), Onboarding.blocker_type))
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=clock.zone())
    start = dt.datetime.combine(first, dt.time(), tzinfo=clock.zone())
    failed = select(func.count(EN.id)).where(EN.status == "failed", EN.updated_at >= start, EN.updated_at < end)
    return {
        "week": content.iso_week(first), "first_day": first.isoformat(), "last_day": last.isoformat(),
        "signups": named(people.where(Customer.signup_date.between(first, last))),
        "completions": named(people.join(Onboarding).where(Onboarding.completed_date.between(first, last))),
        "at_risk": named(moved),
        "blockers": [[blocker, count] for blocker, count in db.session.execute(blockers)],
        "failed_emails": db.session.scalar(failed),
    }


def queue_team_digest(today: dt.date) -> int:
    """The week before today for every active team member."""
    first, last = content.previous_week(today)
    digest, queued_at = digest_of(first, last), moment(today)
    users = db.session.execute(select(User.id, User.email, User.name).where(User.active).order_by(User.id))
    rows = [{"kind": "team_digest", "recipient": email, "queued_at": queued_at,
             "dedupe_key": f"team_digest:u{key}:{digest['week']}", "payload": {**digest, "name": name}}
            for key, email, name in users]
    count = outbox.queue_rows(rows)
    db.session.commit()
    return count


def queue_reengagement(today: dt.date) -> int:
    """Active customers with no activity for reengagement_days days, at most one such email per 14 days."""
    days = settings.get("reengagement_days")
    cutoff = today - dt.timedelta(days=days)
    any_count = or_(*(getattr(Engagement, count) > 0 for count in Engagement.COUNTS))
    active = (select(Engagement.customer_id, func.max(Engagement.date).label("last"))
              .where(any_count, Engagement.date <= today).group_by(Engagement.customer_id).subquery())
    # By calendar day: one queued on day D blocks the next until D + 14, whatever the hour of either run.
    gap_start = dt.datetime.combine(today - REENGAGEMENT_GAP + dt.timedelta(days=1), dt.time(), tzinfo=clock.zone())
    recent = select(EN.customer_id).where(EN.kind == "reengagement", EN.customer_id.is_not(None),
                                          EN.queued_at >= gap_start)
    query = (select(Customer.id, Customer.email, Customer.signup_date, active.c.last)
             .outerjoin(active, active.c.customer_id == Customer.id)
             .where(Customer.status == "active", Customer.unsubscribed_at.is_(None), Customer.signup_date <= cutoff,
                    or_(active.c.last.is_(None), active.c.last <= cutoff), Customer.id.not_in(recent))
             .order_by(Customer.id))
    queued_at = moment(today)
    rows = [{"customer_id": key, "kind": "reengagement", "recipient": email, "queued_at": queued_at,
             "dedupe_key": f"reengagement:{format_id('c', key)}:{today.isoformat()}",
             "payload": {"days": (today - (last or signup)).days, "last_active": last.isoformat() if last else None}}
            for key, email, signup, last in db.session.execute(query)]
    count = outbox.queue_rows(rows)
    db.session.commit()
    return count
