"""The churn model's features for any set of customers as of given dates, with a fixed number of queries.

A customer is in the sample for a date when they had signed up, had not churned by then, and have that day's
health snapshot. The score itself is left out: it is the sum of the four components, and two copies of the same
signal would split its weight and muddle which features drive a risk.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from sqlalchemy import Float, case, cast, func, or_, select

from .. import clock
from ..extensions import db
from ..health.risk import among
from ..models import AuditLog, Customer, Engagement, Feedback, HealthScore, Onboarding, format_id, parse_id

COMPONENTS = ("onboarding", "activity", "success", "volume")
CHANGES = (7, 30)
FEATURES = (
    *COMPONENTS,
    *(f"{name}_change_{days}d" for days in CHANGES for name in COMPONENTS),
    "days_since_activity", "rejection_rate", "rejection_rate_change", "support_requests",
    "blocker_open", "blocker_days", "last_nps",
)
WINDOW = 28  # days of engagement behind the rejection rate and support requests: whole weeks, whole training steps
LOOKBACK = 2 * WINDOW  # days since the last activity are counted up to this
BLOCKER_DAYS_CAP = 60
NEUTRAL_NPS = 7  # a customer never asked counts as a passive


@dataclass
class Samples:
    keys: list[tuple[int, dt.date]]  # (customer id, as-of date), one per row of values
    values: np.ndarray
    scores: np.ndarray  # the plain health score on the as-of date: the baseline
    churned_on: dict[int, dt.date]

    def labels(self, horizon: int = 30) -> np.ndarray:
        """1 where the customer churned within `horizon` days after the as-of date."""
        def churns(key: int, as_of: dt.date) -> bool:
            day = self.churned_on.get(key)
            return day is not None and as_of < day <= as_of + dt.timedelta(days=horizon)
        return np.array([churns(key, as_of) for key, as_of in self.keys], dtype=int)

    def row(self, key: int, as_of: dt.date) -> np.ndarray | None:
        try:
            return self.values[self.keys.index((key, as_of))]
        except ValueError:
            return None


def build(as_of: Iterable[dt.date], customer_ids: Iterable[int] | None = None) -> Samples:
    dates = sorted(set(as_of))
    ids = None if customer_ids is None else list(customer_ids)
    people, churned_on = population(ids)
    snaps = snapshots(dates, ids)
    blockers, answers = blocker_history(ids), nps_history(ids, dates[-1])
    keys, rows, scores = [], [], []
    usage = engagement(dates, ids)
    for day in dates:
        for key, signup in people.items():
            current = snaps.get((key, day))
            if current is None or signup > day or churned_on.get(key, dt.date.max) <= day:
                continue
            keys.append((key, day))
            scores.append(current[0])
            rows.append([*current[1:], *changes(snaps, key, day, current),
                         *usage_features(usage.get((key, day)), day, signup),
                         *blocker_features(blockers.get(key), day), last_nps(answers.get(key), day)])
    values = np.array(rows, dtype=float).reshape(len(rows), len(FEATURES))
    return Samples(keys, values, np.array(scores, dtype=float), churned_on)


def population(ids: list[int] | None) -> tuple[dict[int, dt.date], dict[int, dt.date]]:
    """Signup dates, and the day each churned customer churned: the audit log's status change, else updated_at."""
    rows = db.session.execute(select(Customer.id, Customer.signup_date, Customer.status, Customer.updated_at)
                              .where(among(Customer.id, ids))).all()
    changed = db.session.execute(
        select(AuditLog.record_id, func.max(AuditLog.created_at))
        .where(AuditLog.table_name == "customers", AuditLog.field == "status", AuditLog.new_value == "churned",
               among(AuditLog.record_id, None if ids is None else [format_id("c", key) for key in ids]))
        .group_by(AuditLog.record_id)).all()
    changed_at = {parse_id("c", record): at for record, at in changed}
    churned_on = {row.id: clock.local_date(changed_at.get(row.id) or row.updated_at)
                  for row in rows if row.status == "churned"}
    return {row.id: row.signup_date for row in rows}, churned_on


def snapshots(dates: list[dt.date], ids: list[int] | None) -> dict[tuple[int, dt.date], tuple]:
    wanted = {day - dt.timedelta(days=back) for day in dates for back in (0, *CHANGES)}
    # As floats in SQL: turning hundreds of thousands of NUMERICs into Decimals first would take longer than the query.
    columns = [cast(getattr(HealthScore, f"{name}_component"), Float) for name in COMPONENTS]
    rows = db.session.execute(select(HealthScore.customer_id, HealthScore.date, HealthScore.score, *columns)
                              .where(HealthScore.date.in_(sorted(wanted)), among(HealthScore.customer_id, ids)))
    return {(key, day): (score, *parts) for key, day, score, *parts in rows}


def changes(snaps: dict, key: int, day: dt.date, current: tuple) -> list[float]:
    """Each component's change over 7 and 30 days; 0 when there was no snapshot yet (a new customer)."""
    result = []
    for back in CHANGES:
        before = snaps.get((key, day - dt.timedelta(days=back)))
        result.extend(now - then if before else 0.0 for now, then in zip(current[1:], before or current))
    return result


def bucket_days(dates: list[dt.date]) -> int:
    """The widest span of days that tiles every window of every as-of date: 14 for training (dates two weeks
    apart), 1 for the customer page (today, 7 and 30 days ago)."""
    return math.gcd(WINDOW, *((dates[-1] - day).days for day in dates))


def engagement(dates: list[dt.date], ids: list[int] | None) -> dict[tuple[int, dt.date], tuple]:
    """Per customer and as-of date: PRs rejected and merged in the last four weeks and the four before, support
    requests in the last four, days since the last active day within the look-back.

    One pass over the engagement rows: sums per customer and span of `bucket_days` days, counted back from the
    last as-of date; each date's windows are then whole spans."""
    size, last, first_day = bucket_days(dates), dates[-1], dates[0] - dt.timedelta(days=LOOKBACK)
    # Which span a row falls in, by comparing dates (date arithmetic in SQL costs more than the whole sum).
    spans = range(-(-(last - first_day).days // size))
    span = case(*((Engagement.date > last - dt.timedelta(days=size * (index + 1)), index) for index in spans))
    active = or_(*(getattr(Engagement, count) > 0 for count in Engagement.COUNTS))
    rows = db.session.execute(
        select(Engagement.customer_id, span.label("span"), func.sum(Engagement.prs_rejected),
               func.sum(Engagement.prs_merged), func.sum(Engagement.support_requests),
               func.max(case((active, Engagement.date))))
        .where(Engagement.date > first_day, Engagement.date <= last, among(Engagement.customer_id, ids))
        .group_by(Engagement.customer_id, "span"))
    by_customer: dict[int, dict[int, tuple]] = {}
    for key, index, rejected, merged, support, latest in rows:
        if isinstance(latest, str):  # SQLite hands MAX() of a CASE back as text
            latest = dt.date.fromisoformat(latest)
        by_customer.setdefault(key, {})[int(index)] = (rejected, merged, support, latest)
    return {(key, day): window_totals(by_span, (last - day).days // size, size, day)
            for key, by_span in by_customer.items() for day in dates}


def window_totals(by_span: dict[int, tuple], first: int, size: int, day: dt.date) -> tuple:
    def total(spans, index):
        return sum(by_span[span][index] or 0 for span in spans if span in by_span)
    recent = range(first, first + WINDOW // size)
    before = range(first + WINDOW // size, first + 2 * WINDOW // size)
    seen = [by_span[span][3] for span in range(first, first + LOOKBACK // size) if span in by_span]
    seen = [latest for latest in seen if latest is not None]
    since = (day - max(seen)).days if seen else None
    return total(recent, 0), total(recent, 1), total(before, 0), total(before, 1), total(recent, 2), since


def rate(rejected, merged) -> float | None:
    closed = (rejected or 0) + (merged or 0)
    return 100.0 * (rejected or 0) / closed if closed else None


def usage_features(usage: tuple | None, day: dt.date, signup: dt.date) -> list[float]:
    rejected, merged, rejected_before, merged_before, support, since = usage or (0, 0, 0, 0, 0, None)
    since = since if since is not None else min((day - signup).days, LOOKBACK)
    now, before = rate(rejected, merged), rate(rejected_before, merged_before)
    change = now - before if now is not None and before is not None else 0.0
    return [float(since), now or 0.0, change, float(support or 0)]


def blocker_history(ids: list[int] | None) -> dict[int, tuple[list, list, str, dt.date]]:
    """Per customer: the days the blocker changed, the values before and after each, its current value and since."""
    boards = db.session.execute(select(Onboarding.id, Onboarding.customer_id, Onboarding.blocker_type,
                                       Onboarding.updated_at).where(among(Onboarding.customer_id, ids))).all()
    owner = {board.id: board.customer_id for board in boards}
    found = {board.customer_id: ([], [], board.blocker_type, clock.local_date(board.updated_at)) for board in boards}
    rows = db.session.execute(
        select(AuditLog.record_id, AuditLog.old_value, AuditLog.new_value, AuditLog.created_at)
        .where(AuditLog.table_name == "onboarding", AuditLog.field == "blocker_type",
               among(AuditLog.record_id, None if ids is None else [format_id("o", board.id) for board in boards]))
        .order_by(AuditLog.created_at, AuditLog.id))
    for record, old, new, at in rows:
        key = owner.get(parse_id("o", record))
        if key is not None:
            days, values = found[key][0], found[key][1]
            days.append(clock.local_date(at))
            values.append((old or "none", new or "none"))
    return found


def blocker_features(history: tuple | None, day: dt.date) -> list[float]:
    if history is None:
        return [0.0, 0.0]
    days, values, current, updated = history
    position = bisect.bisect_right(days, day)
    if position:
        value, since = values[position - 1][1], days[position - 1]
    elif days:
        value, since = values[0][0], None  # before the first recorded change: its old value, since unknown
    else:
        value, since = current, updated
    if value == "none":
        return [0.0, 0.0]
    open_days = (day - since).days if since and since <= day else 0
    return [1.0, float(min(open_days, BLOCKER_DAYS_CAP))]


def nps_history(ids: list[int] | None, last: dt.date) -> dict[int, tuple[list, list]]:
    found: dict[int, tuple[list, list]] = {}
    rows = db.session.execute(select(Feedback.customer_id, Feedback.nps, Feedback.created_at)
                              .where(Feedback.nps.is_not(None), among(Feedback.customer_id, ids))
                              .order_by(Feedback.created_at, Feedback.id))
    for key, nps, at in rows:
        day = clock.local_date(at)
        if day <= last:
            days, answers = found.setdefault(key, ([], []))
            days.append(day)
            answers.append(nps)
    return found


def last_nps(history: tuple | None, day: dt.date) -> float:
    if history is None:
        return float(NEUTRAL_NPS)
    position = bisect.bisect_right(history[0], day)
    return float(history[1][position - 1]) if position else float(NEUTRAL_NPS)
