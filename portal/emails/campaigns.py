"""The scheduled emails: weekly summaries, the team's weekly digest, re-engagement. Each queues and commits.

Each job walks the customers in batches of ids (portal.batches): one statement finds a batch's recipients with
what their email says, each customer's engagement and health read through its own (customer_id, date) index for
just the days the email needs, and one INSERT ... ON CONFLICT DO NOTHING queues them. A batch commits before the
next is read: queuing is idempotent by dedupe key, so a run that stops half-way leaves whole batches queued and
the next run adds only the rest, while the transaction, the session and the memory stay the size of one batch
and delivery can send the first batches while the later ones are read.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy import Select, func, or_, select

from .. import clock
from ..batches import absent, id_ranges, latest
from ..health import metrics, settings
from ..extensions import db
from ..models import Customer, EmailNotification, Engagement, HealthScore, Onboarding, User, format_id
from . import content, outbox

EN = EmailNotification
REENGAGEMENT_GAP = dt.timedelta(days=14)
LISTED = 50  # customers named per section of the digest
WEEK_COUNTS = ("issues_tagged", "prs_generated", "prs_merged")
ANY_COUNT = or_(*(getattr(Engagement, count) > 0 for count in Engagement.COUNTS))


def moment(today: dt.date) -> dt.datetime:
    """The queue time of a job run for `today`: now, or that morning when a test or a catch-up names another day."""
    if today == clock.today():
        return clock.now()
    return dt.datetime.combine(today, dt.time(9), tzinfo=clock.zone()).astimezone(dt.timezone.utc)


def in_batches(query: Callable[[int, int], Select], row_for: Callable, progress=None) -> int:
    """Queue the rows of query(first id, last id) for each batch of customers, committing each batch."""
    count = 0
    for first, last in id_ranges(progress=progress):
        count += outbox.queue_rows([row_for(row) for row in db.session.execute(query(first, last))])
        db.session.commit()
    return count


def engagement_sum(count: str, first: dt.date, last: dt.date):
    """The customer's total of one count over the days first..last, from their rows of those days only."""
    return (select(func.coalesce(func.sum(getattr(Engagement, count)), 0))
            .where(Engagement.customer_id == Customer.id, Engagement.date.between(first, last)).scalar_subquery())


def queue_weekly_summaries(today: dt.date, progress=None) -> int:
    """Each active, subscribed customer's week (the ISO week that ended before today), with their health on their
    latest snapshot before today."""
    first, last = content.previous_week(today)
    week, queued_at = content.iso_week(first), moment(today)
    columns = [Customer.id, Customer.email, latest(HealthScore.score, before=today).label("score"),
               latest(HealthScore.status, before=today).label("status"),
               *(engagement_sum(count, first, last).label(count) for count in WEEK_COUNTS)]

    def query(low: int, high: int) -> Select:
        return (select(*columns).where(Customer.id.between(low, high), Customer.status == "active",
                                       Customer.unsubscribed_at.is_(None)).order_by(Customer.id))

    def row_for(row) -> dict:
        return {"customer_id": row.id, "kind": "weekly_summary", "recipient": row.email, "queued_at": queued_at,
                "dedupe_key": f"weekly_summary:{format_id('c', row.id)}:{week}",
                "payload": {"week": week, "first_day": first.isoformat(), "last_day": last.isoformat(),
                            "issues_tagged": int(row.issues_tagged), "prs_generated": int(row.prs_generated),
                            "prs_merged": int(row.prs_merged),
                            "success_rate": metrics.success_rate(int(row.prs_merged), int(row.prs_generated)),
                            "health_score": row.score, "health_status": row.status}}

    return in_batches(query, row_for, progress)


def named(query) -> list[list[str]]:
    return [[format_id("c", key), organization] for key, organization in db.session.execute(query.limit(LISTED))]


def moved_into_at_risk(first: dt.date, last: dt.date) -> list[list[str]]:
    """The first LISTED customers (by id), churned ones left out, at risk on their latest snapshot by the week's
    end and not on their latest before it (or with none before it): batch by batch, stopping once LISTED are
    found."""
    after, before = latest(HealthScore.status, through=last), latest(HealthScore.status, before=first)
    found: list[list[str]] = []
    for low, high in id_ranges():
        query = (select(Customer.id, Customer.organization)
                 .where(Customer.id.between(low, high), Customer.status != "churned", after == "at_risk",
                        func.coalesce(before, "") != "at_risk")
                 .order_by(Customer.id).limit(LISTED - len(found)))
        found += [[format_id("c", key), organization] for key, organization in db.session.execute(query)]
        if len(found) >= LISTED:
            break
    return found


def digest_of(first: dt.date, last: dt.date) -> dict:
    """What the team's digest says about a week."""
    people = select(Customer.id, Customer.organization).order_by(Customer.id)
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
        "at_risk": moved_into_at_risk(first, last),
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


def queue_reengagement(today: dt.date, progress=None) -> int:
    """Active customers with no activity for reengagement_days days, at most one such email per 14 days.

    Whether a customer was active is read from their engagement rows of those days only; the day they were last
    active (for the email) only for the customers who get one."""
    days = settings.get("reengagement_days")
    cutoff = today - dt.timedelta(days=days)
    lately = select(Engagement.id).where(Engagement.customer_id == Customer.id, Engagement.date > cutoff,
                                         Engagement.date <= today, ANY_COUNT)
    last_active = (select(Engagement.date).where(Engagement.customer_id == Customer.id, Engagement.date <= today,
                                                 ANY_COUNT)
                   .order_by(Engagement.date.desc()).limit(1).scalar_subquery())
    # By calendar day: one queued on day D blocks the next until D + 14, whatever the hour of either run.
    gap_start = dt.datetime.combine(today - REENGAGEMENT_GAP + dt.timedelta(days=1), dt.time(), tzinfo=clock.zone())
    recent = select(EN.id).where(EN.customer_id == Customer.id, EN.kind == "reengagement", EN.queued_at >= gap_start)
    queued_at = moment(today)

    def query(low: int, high: int) -> Select:
        return (select(Customer.id, Customer.email, Customer.signup_date, last_active.label("last"))
                .where(Customer.id.between(low, high), Customer.status == "active", Customer.unsubscribed_at.is_(None),
                       Customer.signup_date <= cutoff, absent(lately), absent(recent))
                .order_by(Customer.id))

    def row_for(row) -> dict:
        last = row.last
        return {"customer_id": row.id, "kind": "reengagement", "recipient": row.email, "queued_at": queued_at,
                "dedupe_key": f"reengagement:{format_id('c', row.id)}:{today.isoformat()}",
                "payload": {"days": (today - (last or row.signup_date)).days,
                            "last_active": last.isoformat() if last else None}}

    return in_batches(query, row_for, progress)
