"""Risk signals specific to the product, raised beside the health score.

Five rules, each with its threshold in the portal settings:
- the Action uninstalled: the customer's latest GitHub `installation` event is a deletion;
- no Action activity: no day with issues tagged or PRs generated for `risk_inactive_days` (for customers
  who signed up at least that long ago);
- rejections rising: over the last 14 days at least `risk_rejection_percent` % of the closed PRs were
  rejected, and more than in the 14 days before;
- a blocker open for more than `risk_blocker_days` days (since the blocker was last set);
- a detractor: the customer's latest NPS answer is 6 or less.

`signals(ids)` computes them for any set of customers with a fixed number of queries.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import and_, case, func, or_, select, true

from .. import clock
from ..extensions import db
from ..models import AuditLog, Customer, Engagement, Event, Feedback, Onboarding, format_id
from . import settings

WINDOW = 14
DETRACTOR_MAX = 6
KINDS = ("uninstalled", "inactive", "rejections", "blocker", "detractor")
TITLES = {"uninstalled": "Action uninstalled", "inactive": "No Action activity", "rejections": "Rejections rising",
          "blocker": "Blocker open", "detractor": "Detractor"}


@dataclass(frozen=True)
class Signal:
    kind: str
    detail: str

    @property
    def title(self) -> str:
        return TITLES[self.kind]


def rejection_rate(rejected: int, merged: int) -> int | None:
    closed = rejected + merged
    return rejected * 100 // closed if closed else None


def rejections_rising(recent: tuple[int, int], before: tuple[int, int], threshold: int) -> bool:
    """(rejected, merged) of the last 14 days and of the 14 before."""
    now, then = rejection_rate(*recent), rejection_rate(*before)
    return now is not None and now >= threshold and (then is None or now > then)


def among(column, ids: list[int] | None):
    """The condition "column is one of these customers"; None means every customer (no IN list of thousands).
    Within the ids' range too, as in snapshots.among: PostgreSQL short of statistics then reads a batch through
    the index rather than the whole table."""
    return true() if ids is None else and_(column.between(min(ids), max(ids)), column.in_(ids))


def signals(customer_ids: Iterable[int] | None, today: dt.date | None = None) -> dict[int, list[Signal]]:
    """The raised signals of these customers (None: of everyone); a customer with none is left out."""
    ids = None if customer_ids is None else list(customer_ids)
    today = today or clock.today()
    found: dict[int, list[Signal]] = {}
    if ids == []:
        return found
    current = settings.current()
    for finder in (uninstalled, inactive, rejections, blockers, detractors):
        for customer_id, signal in finder(ids, today, current):
            found.setdefault(customer_id, []).append(signal)
    return found


def latest_ids(model, ids: list[int] | None, *where, order=None) -> dict[int, int]:
    """{customer id: id of their latest `model` row matching `where`} of these customers, newest by `order` (the
    id by default). A lookup per customer through its customer_id index: grouping the rows of `customer_id IN
    (...)` was planned, without fresh statistics, as a pass over the whole table for every batch of customers."""
    order = order if order is not None else [model.id.desc()]
    latest = (select(model.id).where(model.customer_id == Customer.id, *where).order_by(*order).limit(1)
              .scalar_subquery())
    return {customer_id: row_id for customer_id, row_id in db.session.execute(
        select(Customer.id, latest).where(among(Customer.id, ids))) if row_id is not None}


def uninstalled(ids: list[int] | None, _today: dt.date, _settings: dict):
    latest = latest_ids(Event, ids, Event.source == "github", Event.event_type == "installation",
                        order=[Event.received_at.desc(), Event.id.desc()])
    if not latest:
        return
    rows = db.session.execute(select(Event.customer_id, Event.payload, Event.received_at)
                              .where(Event.id.in_(list(latest.values()))))
    for customer_id, payload, received_at in rows:
        if isinstance(payload, dict) and payload.get("action") == "deleted":
            yield customer_id, Signal("uninstalled", f"GitHub reported the Action uninstalled on {received_at:%Y-%m-%d}.")


def inactive(ids: list[int] | None, today: dt.date, current: dict):
    days = current["risk_inactive_days"]
    last = (select(func.max(Engagement.date))
            .where(Engagement.customer_id == Customer.id, or_(Engagement.issues_tagged > 0, Engagement.prs_generated > 0))
            .scalar_subquery())
    since = today - dt.timedelta(days=days)
    for customer_id, signup, status, latest in db.session.execute(
        select(Customer.id, Customer.signup_date, Customer.status, last).where(among(Customer.id, ids))
    ):
        if status != "churned" and signup <= since and (latest is None or latest <= since):
            when = f"since {latest}" if latest else "ever"
            yield customer_id, Signal("inactive", f"No issue tagged or PR generated {when} ({days}+ days).")


def rejections(ids: list[int] | None, today: dt.date, current: dict):
    threshold = current["risk_rejection_percent"]
    recent_start, before_start = today - dt.timedelta(days=WINDOW - 1), today - dt.timedelta(days=2 * WINDOW - 1)
    recent = Engagement.date >= recent_start
    window = (Engagement.customer_id == Customer.id, Engagement.date.between(before_start, today))
    sums = [select(func.sum(column)).where(*window).scalar_subquery()  # per customer, as in latest_ids
            for column in (case((recent, Engagement.prs_rejected), else_=0), case((recent, Engagement.prs_merged), else_=0),
                           Engagement.prs_rejected, Engagement.prs_merged)]
    rows = db.session.execute(select(Customer.id, *sums).where(among(Customer.id, ids)))
    for customer_id, recent_rejected, recent_merged, rejected, merged in rows:
        now = (int(recent_rejected or 0), int(recent_merged or 0))
        then = (int(rejected or 0) - now[0], int(merged or 0) - now[1])
        if rejections_rising(now, then, threshold):
            before = rejection_rate(*then)
            was = f", up from {before}%" if before is not None else ""
            yield customer_id, Signal("rejections", f"{rejection_rate(*now)}% of PRs closed in the last {WINDOW} days "
                                                    f"were rejected{was} (threshold {threshold}%).")


def blockers(ids: list[int] | None, today: dt.date, current: dict):
    days = current["risk_blocker_days"]
    rows = db.session.execute(
        select(Onboarding.customer_id, Onboarding.id, Onboarding.blocker_type, Onboarding.updated_at)
        .where(among(Onboarding.customer_id, ids), Onboarding.blocker_type != "none")
    ).all()
    if not rows:
        return
    records = [format_id("o", row.id) for row in rows]
    set_at = dict(db.session.execute(
        select(AuditLog.record_id, func.max(AuditLog.created_at))
        .where(AuditLog.table_name == "onboarding", AuditLog.field == "blocker_type", AuditLog.record_id.in_(records))
        .group_by(AuditLog.record_id)
    ).all())
    for row in rows:
        since = clock.local_date(set_at.get(format_id("o", row.id)) or row.updated_at)
        if (today - since).days > days:
            yield row.customer_id, Signal("blocker", f"Blocked by {row.blocker_type.replace('_', ' ')} since {since} "
                                                     f"({(today - since).days} days).")


def detractors(ids: list[int] | None, _today: dt.date, _settings: dict):
    latest = latest_ids(Feedback, ids, Feedback.nps.is_not(None))
    if not latest:
        return
    for customer_id, nps, created_at in db.session.execute(
        select(Feedback.customer_id, Feedback.nps, Feedback.created_at).where(Feedback.id.in_(list(latest.values())))
    ):
        if nps <= DETRACTOR_MAX:
            yield customer_id, Signal("detractor", f"Answered NPS {nps} on {created_at:%Y-%m-%d}.")
