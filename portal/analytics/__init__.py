"""Reports and dashboard figures, each a handful of aggregate queries."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Integer, case, cast, func, select

from .. import clock
from ..health import metrics, risk, rollups, snapshots
from ..extensions import db
from ..models import Customer, Engagement, HealthCurrent, HealthScore, format_id


def percent(part: int, whole: int) -> int:
    return part * 100 // whole if whole else 0


@dataclass
class OnboardingSummary:
    total: int
    completed: int
    completion_rate: int
    steps: list[tuple[str, int, int]]
    average_days_to_complete: float | None
    blockers: dict[str, int]


def onboarding_summary(today: dt.date | None = None) -> OnboardingSummary:
    """The funnel, the blockers and the average days to complete from the day's rollup (customers with each step
    done, with each blocker, and the days to complete summed over those who have them)."""
    day = rollups.day(ensure_todays_scores(today or clock.today()))
    total, completed = day["customers"], day["completed"]
    timed = day["completions_timed"]
    blocked = [(kind, int(day[f"blocker:{kind}"])) for kind in metrics.BLOCKER_TYPES if day[f"blocker:{kind}"] > 0]
    counts = [day[f"step:{step}"] for step in metrics.STEPS]
    return OnboardingSummary(
        total=total,
        completed=completed,
        completion_rate=percent(completed, total),
        steps=[(step, int(count), percent(int(count), total)) for step, count in zip(metrics.STEPS, counts)],
        average_days_to_complete=round(day["completion_days"] / timed, 1) if timed else None,
        blockers=dict(sorted(blocked, key=lambda item: (-item[1], item[0]))),
    )


def engagement_summary(days: int, today: dt.date | None = None) -> list[dict]:
    """Per customer, the totals of the last `days` days (today and the days - 1 before) and success rate."""
    today = today or clock.today()
    first = metrics.window_start(today, days)
    sums = [func.coalesce(func.sum(getattr(Engagement, count)), 0).label(count) for count in Engagement.COUNTS]
    window = (
        select(Engagement.customer_id, *sums)
        .where(Engagement.date.between(first, today))
        .group_by(Engagement.customer_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Customer.id, Customer.organization, *(func.coalesce(window.c[count], 0).label(count) for count in Engagement.COUNTS))
        .outerjoin(window, window.c.customer_id == Customer.id)
        .order_by(Customer.id)
    )
    return [
        {
            "customer_id": format_id("c", row.id),
            "organization": row.organization,
            **{count: int(getattr(row, count)) for count in Engagement.COUNTS},
            "success_rate": metrics.success_rate(int(row.prs_merged), int(row.prs_generated)),
        }
        for row in rows
    ]


# Up to this many customers, the day's first page view recalculates everyone itself (under a second); past it the
# pages show the last complete day until the health job (every hour at :05) has run.
IN_REQUEST_CUSTOMERS = 2_000


def ensure_todays_scores(today: dt.date, wait: bool = False) -> dt.date:
    """The day whose figures are complete: today, after recalculating everyone on the first view of a day that has
    no full recalculation yet; or, for a page view (not `wait`) of a portal with more than IN_REQUEST_CUSTOMERS
    customers, the last complete day, so that no request (nor every request of a link scanner at once) recalculates
    100,000 customers. Jobs and actions that act on today's scores wait.

    Every change recalculates the customers it touches, so after one full run a day the snapshots
    stay complete; a key lookup tells whether that run happened, and once it has, the process remembers
    it for the rest of the day (the marker only ever moves forward), so a page view costs no query for it.
    """
    seen = current_app.extensions.setdefault("portal.scores_complete", set())
    if today in seen:
        return today
    done = snapshots.completed_on()
    if done != today:
        if not wait and done is not None and done < today and more_customers_than(IN_REQUEST_CUSTOMERS):
            return done
        snapshots.refresh(today)
    seen.add(today)
    return today


def more_customers_than(count: int) -> bool:
    return db.session.scalar(select(func.count()).select_from(
        select(Customer.id).limit(count + 1).subquery())) > count


def at_risk_count(day: Counter) -> int:
    """A day's customers at risk, the churned left out (they have left already: their own count is the stage's)."""
    return day["band:at_risk"] - day[rollups.CHURNED_AT_RISK]


@dataclass
class Trends:
    """One entry per calendar day, oldest first; None where no snapshot was taken that day."""

    days: list[dt.date]
    average_score: list[float | None]
    at_risk: list[int | None]

    def rows(self) -> list[tuple[dt.date, float | None, int | None]]:
        return list(zip(self.days, self.average_score, self.at_risk))


def trends(days: int = 90, today: dt.date | None = None) -> Trends:
    """The average health score and the at-risk count (churned customers left out) of each of the last `days`
    days, from the daily rollups:
    `days` rows of a few measures, whatever the number of customers. Days without snapshots (the hourly job did
    not run) stay None so a chart shows a gap rather than a drop to zero."""
    today = today or clock.today()
    first = metrics.window_start(today, days)
    measures = ("customers", "score_total", "band:at_risk", rollups.CHURNED_AT_RISK)
    by_day = {day: (round(found["score_total"] / found["customers"], 1), at_risk_count(found))
              for day, found in rollups.days(first, today, measures).items() if found["customers"]}
    calendar = [first + dt.timedelta(days=offset) for offset in range(days)]
    return Trends(
        days=calendar,
        average_score=[by_day[day][0] if day in by_day else None for day in calendar],
        at_risk=[by_day[day][1] if day in by_day else None for day in calendar],
    )


@dataclass
class SignalOverview:
    """Customers per signal over every active or paused customer, how many have any, and the `listed` of them
    with the most signals (then the lowest score)."""

    totals: dict[str, int]
    signalled: int
    listed: list[tuple[Customer, list[risk.Signal]]]


def signal_overview(today: dt.date | None = None, listed: int = 50) -> SignalOverview:
    """The counts from the day's rollup; the list from each customer's current signals
    (ix_health_current_signal_count), each listed customer's signals then told afresh with their details."""
    today = today or clock.today()
    day = rollups.day(today)
    first = db.session.scalars(
        select(Customer).join(HealthCurrent, HealthCurrent.customer_id == Customer.id)
        .where(HealthCurrent.signal_count > 0, HealthCurrent.stage != "churned")
        .order_by(HealthCurrent.signal_count.desc(), HealthCurrent.score, HealthCurrent.customer_id)
        .limit(listed)).all()
    told = risk.signals([customer.id for customer in first], today)
    return SignalOverview({kind: day[f"signal:{kind}"] for kind in risk.KINDS}, day["signalled"],
                          [(customer, told[customer.id]) for customer in first if customer.id in told])


@dataclass
class Dashboard:
    onboarding: OnboardingSummary
    at_risk: int  # the churned left out
    churned: int
    stages: dict[str, int]
    bands: dict[str, int]
    at_risk_customers: list[tuple[Customer, HealthCurrent]]
    trends: Trends
    signals: SignalOverview
    day: dt.date  # whose figures these are: today, or the last complete day before the day's health job ran
    today: dt.date


def dashboard(today: dt.date | None = None, at_risk_limit: int = 50) -> Dashboard:
    """Today's figures from the day's rollup; the at-risk list holds the `at_risk_limit` lowest current scores
    (ix_health_current_band_score; the KPI counts them all). Churned customers are neither in the at-risk count nor
    in its list: they are counted as churned."""
    today = today or clock.today()
    complete = ensure_todays_scores(today)
    day = rollups.day(complete)
    stages = {stage: day[f"stage:{stage}"] for stage in metrics.STAGES}
    bands = {band: day[f"band:{band}"] for band in metrics.STATUSES}
    at_risk = db.session.execute(
        select(Customer, HealthCurrent)
        .join(HealthCurrent, HealthCurrent.customer_id == Customer.id)
        .where(HealthCurrent.band == "at_risk", HealthCurrent.stage != "churned")
        .order_by(HealthCurrent.score, HealthCurrent.customer_id)
        .limit(at_risk_limit)
    ).all()
    return Dashboard(
        onboarding=onboarding_summary(complete),
        at_risk=at_risk_count(day),
        churned=stages["churned"],
        stages=stages,
        bands=bands,
        at_risk_customers=[tuple(row) for row in at_risk],
        trends=trends(today=complete),
        signals=signal_overview(complete),
        day=complete,
        today=today,
    )
