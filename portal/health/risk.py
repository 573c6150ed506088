"""Risk signals specific to the product, raised beside the health score.

Five rules, each with its threshold in the portal settings:
- the Action uninstalled: the customer's latest GitHub `installation` event is a deletion;
- no Action activity: no day with issues tagged or PRs generated for `risk_inactive_days` (for customers
  who signed up at least that long ago);
- rejections rising: over the last 14 days at least `risk_rejection_percent` % of the closed PRs were
  rejected, and more than in the 14 days before;
- a blocker open for more than `risk_blocker_days` days (since the blocker was last set);
- a detractor: the customer's latest NPS answer is 6 or less.

`signals(ids)` computes them for any set of customers in one statement.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

from sqlalchemy import (Select, String, and_, bindparam, case, cast, func, literal, literal_column, or_, select,
                        true)

from .. import clock
from ..extensions import db
from ..models import PUBLIC_ID_OFFSET, AuditLog, Customer, Engagement, Event, Feedback, Onboarding
from ..sql import ZERO
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


def signals(customer_ids: Iterable[int] | None, today: dt.date | None = None,
            current: dict | None = None) -> dict[int, list[Signal]]:
    """The raised signals of these customers (None: of everyone); a customer with none is left out. One statement
    for any number of customers (see facts); `current`: the portal's settings, when the caller has them."""
    ids = None if customer_ids is None else list(customer_ids)
    today = today or clock.today()
    found: dict[int, list[Signal]] = {}
    if ids == []:
        return found
    current = current or settings.current()
    params = facts_params(today)
    if ids is not None:
        params.update(ids=ids, first_id=min(ids), last_id=max(ids))
    for row in db.session.execute(facts(ids is None), params):
        signals_of_row = raised(row, today, current)
        if signals_of_row:
            found[row.id] = signals_of_row
    return found


def raised(row, today: dt.date, current: dict) -> list[Signal]:
    """The signals of a row with the fact_columns(), the customer's signup_date and status, and their onboarding's
    blocker_type and onboarding_updated_at."""
    return [signal for signal in (uninstalled(row), inactive(row, today, current), rejections(row, current),
                                  blocker(row, today, current), detractor(row)) if signal]


def facts_params(today: dt.date) -> dict:
    return {"today": today, "recent_start": today - dt.timedelta(days=WINDOW - 1),
            "window_start": today - dt.timedelta(days=2 * WINDOW - 1)}


class Figure(NamedTuple):
    """A figure of a customer's engagement rows: `aggregate` of `value` over the rows meeting `conditions`."""
    name: str
    aggregate: Callable
    value: Any
    conditions: tuple

    def per_customer(self):
        """As a subquery correlated with customers: the rows read through the customer's (customer_id, date)
        range."""
        engagement, customers = Engagement.__table__.c, Customer.__table__.c
        return (select(self.aggregate(self.value)).where(engagement.customer_id == customers.id, *self.conditions)
                .scalar_subquery())

    def of_group(self):
        """As a column of a query over a customer's rows grouped by customer: every figure in one pass."""
        return self.aggregate(case((and_(*self.conditions), self.value)))


# The statements below are built on the tables' columns, not the models' attributes: plain Core statements, which
# SQLAlchemy runs without the ORM's work on every execution (a webhook delivery runs one for its customer).

@functools.cache
def engagement_figures() -> tuple[Figure, ...]:
    """What the rules read from a customer's engagement: the last day active, and the PRs rejected and merged over
    the last 14 days and the 28 (the days are parameters: facts_params)."""
    engagement = Engagement.__table__.c
    active = or_(engagement.issues_tagged > ZERO, engagement.prs_generated > ZERO)
    recent = engagement.date.between(bindparam("recent_start"), bindparam("today"))
    window = engagement.date.between(bindparam("window_start"), bindparam("today"))
    return (Figure("last_active", func.max, engagement.date, (active,)),
            Figure("recent_rejected", func.sum, engagement.prs_rejected, (recent,)),
            Figure("recent_merged", func.sum, engagement.prs_merged, (recent,)),
            Figure("rejected", func.sum, engagement.prs_rejected, (window,)),
            Figure("merged", func.sum, engagement.prs_merged, (window,)))


@functools.cache
def fact_columns(engagement: bool = True) -> tuple:
    """Per customer, what the five rules read, each a lookup through that customer's own index (a scalar subquery
    correlated with customers, and with onboarding for the blocker): grouping the rows of `customer_id IN (...)`
    was planned, without fresh statistics, as a pass over the whole table for every batch of customers, and a
    delivery for one customer paid a round trip per rule. The days are parameters (facts_params), so the columns
    are built once (building them cost a delivery more than running them). Without `engagement`, the
    engagement_figures() are left to the caller (a recalculation reads them with its totals, in one pass)."""
    customers, onboarding = Customer.__table__.c, Onboarding.__table__.c
    events, feedback, audit = Event.__table__.c, Feedback.__table__.c, AuditLog.__table__.c

    def newest(column, table, *where, order=None):
        ordered = order if order is not None else [table.id.desc()]
        return (select(column).where(table.customer_id == customers.id, *where).order_by(*ordered)
                .limit(literal_column("1")).scalar_subquery())

    # When the latest installation event is a deletion, its time: only its action is read, not the payload.
    deleted = case((events.payload["action"].as_string() == "deleted", events.received_at))
    uninstalled_at = newest(deleted, events, events.source == "github", events.event_type == "installation",
                            order=[events.received_at.desc(), events.id.desc()])
    onboarding_record = literal("o", String) + cast(onboarding.id + PUBLIC_ID_OFFSET, String)
    blocker_set = (select(func.max(audit.created_at))
                   .where(audit.table_name == "onboarding", audit.record_id == onboarding_record,
                          audit.field == "blocker_type", onboarding.blocker_type != "none")
                   .scalar_subquery())
    answered = feedback.nps.is_not(None)
    figures = [figure.per_customer().label(figure.name) for figure in engagement_figures()] if engagement else []
    return (uninstalled_at.label("uninstalled_at"),
            *figures,
            blocker_set.label("blocker_set_at"),
            newest(feedback.nps, feedback, answered).label("nps"),
            newest(feedback.created_at, feedback, answered).label("nps_at"))


@functools.cache
def facts(everyone: bool) -> Select:
    """The facts of everyone, or of the expanding :ids within :first_id..:last_id (as snapshots.among)."""
    customers, onboarding = Customer.__table__, Onboarding.__table__
    chosen = and_(customers.c.id.between(bindparam("first_id"), bindparam("last_id")),
                  customers.c.id.in_(bindparam("ids", expanding=True)))
    return (
        select(customers.c.id, customers.c.signup_date, customers.c.status, *fact_columns(),
               onboarding.c.blocker_type, onboarding.c.updated_at.label("onboarding_updated_at"))
        .select_from(customers)
        .outerjoin(onboarding, onboarding.c.customer_id == customers.c.id)
        .where(true() if everyone else chosen)
    )


def uninstalled(row) -> Signal | None:
    if row.uninstalled_at is not None:
        return Signal("uninstalled", f"GitHub reported the Action uninstalled on {row.uninstalled_at:%Y-%m-%d}.")
    return None


def inactive(row, today: dt.date, current: dict) -> Signal | None:
    days = current["risk_inactive_days"]
    since = today - dt.timedelta(days=days)
    latest = row.last_active
    if row.status != "churned" and row.signup_date <= since and (latest is None or latest <= since):
        when = f"since {latest}" if latest else "ever"
        return Signal("inactive", f"No issue tagged or PR generated {when} ({days}+ days).")
    return None


def rejections(row, current: dict) -> Signal | None:
    threshold = current["risk_rejection_percent"]
    now = (int(row.recent_rejected or 0), int(row.recent_merged or 0))
    then = (int(row.rejected or 0) - now[0], int(row.merged or 0) - now[1])
    if not rejections_rising(now, then, threshold):
        return None
    before = rejection_rate(*then)
    was = f", up from {before}%" if before is not None else ""
    return Signal("rejections", f"{rejection_rate(*now)}% of PRs closed in the last {WINDOW} days "
                                f"were rejected{was} (threshold {threshold}%).")


def blocker(row, today: dt.date, current: dict) -> Signal | None:
    if row.blocker_type in (None, "none"):
        return None
    days = current["risk_blocker_days"]
    since = clock.local_date(row.blocker_set_at or row.onboarding_updated_at)
    if (today - since).days > days:
        return Signal("blocker", f"Blocked by {row.blocker_type.replace('_', ' ')} since {since} "
                                 f"({(today - since).days} days).")
    return None


def detractor(row) -> Signal | None:
    if row.nps is not None and row.nps <= DETRACTOR_MAX:
        return Signal("detractor", f"Answered NPS {row.nps} on {row.nps_at:%Y-%m-%d}.")
    return None
