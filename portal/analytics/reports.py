"""The analytics page's reports: cohort retention, the funnel per cohort, band migration and weekly trends.

Each report is a few grouped queries folded into a `Table` (headers and rows), which the page shows,
the chart draws and the CSV download writes, so the three can never disagree. Filters narrow the
customers (cohort, owner, industry) and the period (`start`..`end`, days inclusive).
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (Date, Integer, and_, case, cast, func, literal, null, or_, select, true,
                        type_coerce, union_all)
from sqlalchemy.orm import aliased

from ..customers.queries import owned_by
from ..extensions import db
from ..health import metrics, rollups
from ..models import (Customer, Engagement, EngagementTotal, FunnelDay, HealthScore,
                      Onboarding, RetentionDay)
from ..sql import dialect

RETENTION_WEEKS = 12
MIGRATION_DAYS = rollups.MIGRATION_DAYS
NO_SNAPSHOT = rollups.NO_SNAPSHOT
TEAM_SIZES = ((1, 5), (6, 20), (21, 50), (51, None))  # team-size brackets, inclusive
GROUPINGS = ("overall", "cohort", "industry", "team_size")


@dataclass
class Table:
    name: str
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Filters:
    start: dt.date
    end: dt.date
    cohort: str = ""
    owner: str = ""  # a user id, "none", or "" for anyone
    industry: str = ""

    def customer_conditions(self) -> list:
        where = []
        if self.cohort:
            where.append(Customer.cohort == self.cohort)
        if self.industry:
            where.append(Customer.industry == self.industry)
        return where + owned_by(self.owner)


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def share(part: int, whole: int) -> int:
    return part * 100 // whole if whole else 0


def days_between(later, earlier):
    """later - earlier in whole days, as SQL on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(cast(later, Date) - cast(earlier, Date), Integer)
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def active_day():
    return or_(*(getattr(Engagement, count) > 0 for count in Engagement.COUNTS))


# -- cohort retention ----------------------------------------------------------------------------------------

def retention(filters: Filters) -> Table:
    """Weekly signup cohorts (by the Monday of the signup week) and, for week N after each customer's own signup
    date (days 7N..7N+6), the share of the cohort with any engagement. A week not yet begun for the cohort's first
    day is left empty rather than shown as 0%.

    Over every customer, from retention_days (kept by the database as engagement and customers change) when no
    engagement is dated after the period, so a week's count is the one the period shows; otherwise, or for some
    customers (a filter), from the cohorts' engagement."""
    first, last = week_start(filters.start), filters.end
    if not filters.customer_conditions() and not engaged_after(last):
        counted = db.session.execute(
            select(RetentionDay.signup_day, RetentionDay.week, RetentionDay.customers)
            .where(RetentionDay.signup_day.between(first, last), RetentionDay.customers != 0)).all()
    else:
        signed = (Customer.signup_date >= first, Customer.signup_date <= last, *filters.customer_conditions())
        counted = [(signup, RetentionDay.SIGNED_UP, count) for signup, count in db.session.execute(
            select(Customer.signup_date, func.count()).where(*signed).group_by(Customer.signup_date))]
        counted += db.session.execute(active_weeks(signed, first, last)).all()
    sizes: dict[dt.date, int] = {}
    active: dict[tuple[dt.date, int], int] = {}
    for signup, week, count in counted:  # (signup day, week N or SIGNED_UP, customers)
        if week == RetentionDay.SIGNED_UP:
            sizes[week_start(signup)] = sizes.get(week_start(signup), 0) + count
        else:
            key = (week_start(signup), int(week))
            active[key] = active.get(key, 0) + count
    table = Table("retention", "Cohort retention: share of each weekly signup cohort active in week N",
                  ["Signup week", "Customers", *(f"Week {n}" for n in range(RETENTION_WEEKS))])
    for cohort_week in sorted(week for week, size in sizes.items() if size):
        cells = [share(active.get((cohort_week, n), 0), sizes[cohort_week])
                 if cohort_week + dt.timedelta(days=7 * n) <= last else None for n in range(RETENTION_WEEKS)]
        table.rows.append([cohort_week.isoformat(), sizes[cohort_week], *cells])
    return table


def engaged_after(day: dt.date) -> bool:
    """Whether any engagement is dated after `day`: the latest date, one step down ix_engagement_date (a LIMIT 1
    over a range is planned as a scan of the table when the planner has no statistics)."""
    latest = db.session.scalar(select(func.max(Engagement.date)))
    return latest is not None and latest > day


def active_weeks(signed: tuple, first: dt.date, last: dt.date):
    """(signup day, week N, customers active in it) of the customers `signed` up (from `first` on), each week's days
    up to `last`.

    Each customer's engagement of its first RETENTION_WEEKS weeks is read through its (customer_id, date) range: on
    PostgreSQL a LATERAL subquery per customer, grouped by week there (one row per customer and week active), so the
    plan is a loop over the cohorts' customers whatever the planner makes of a join (it hashed every engagement row
    of the period); SQLite's join loops over them already."""
    offset = days_between(Engagement.date, Customer.signup_date)
    week = offset // 7
    if dialect() == "postgresql":
        own_weeks = (Engagement.customer_id == Customer.id, active_day(), Engagement.date >= Customer.signup_date,
                     Engagement.date < Customer.signup_date + RETENTION_WEEKS * 7, Engagement.date <= last)
        weeks = select(week.label("week")).where(*own_weeks).group_by(week).lateral("weeks")
        return (select(Customer.signup_date, weeks.c.week, func.count()).select_from(Customer).join(weeks, true())
                .where(*signed).group_by(Customer.signup_date, weeks.c.week))
    # No engagement before the first signup counts: the cohorts' rows, not the history's.
    return (select(Customer.signup_date, week, func.count(func.distinct(Customer.id)))
            .join(Engagement, Engagement.customer_id == Customer.id)
            .where(*signed, active_day(), offset >= 0, offset < RETENTION_WEEKS * 7,
                   Engagement.date.between(first, last))
            .group_by(Customer.signup_date, week))


def retention_curve(table: Table) -> list[int | None]:
    """Week N's share across every cohort that has reached week N, weighted by cohort size."""
    curve = []
    for column in range(2, 2 + RETENTION_WEEKS):
        reached = [(row[1], row[column]) for row in table.rows if row[column] is not None]
        customers = sum(size for size, _ in reached)
        curve.append(round(sum(size * value for size, value in reached) / customers) if customers else None)
    return curve


# -- funnel per cohort ---------------------------------------------------------------------------------------

def day_of(moment):
    """The UTC calendar day of a stored moment as SQL, as the triggers keeping funnel_days count it."""
    if dialect() == "postgresql":
        return cast(func.timezone("UTC", moment), Date)
    return func.date(moment)


def days_from(later, earlier):
    """Whole days from the day `earlier` to the day `later` (both days, not moments), as SQL on either database."""
    if dialect() == "postgresql":
        return cast(later - earlier, Integer)
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def funnel_counts(filters: Filters):
    """One statement over the cohorts' customers, each read once (a materialized CTE): per cohort, a row with its
    customers and the steps done (index NULL); per cohort, gap and number of days, a row with how many customers
    took that many days over that gap (index the gap's). Ordered by cohort."""
    steps = range(len(metrics.STEPS))
    reached = [day_of(getattr(Onboarding, f"{step}_at")) for step in metrics.STEPS]
    spans = (select(Customer.cohort.label("cohort"),
                    *(case((getattr(Onboarding, step), 1), else_=0).label(f"done{index}")
                      for index, step in enumerate(metrics.STEPS)),
                    *(days_from(after, before).label(f"gap{index}")
                      for index, (before, after) in enumerate(zip([Customer.signup_date, *reached], reached))))
             .join(Onboarding, Onboarding.customer_id == Customer.id)
             .where(Customer.signup_date.between(filters.start, filters.end), *filters.customer_conditions())
             .cte("spans").prefix_with("MATERIALIZED"))
    members = (select(spans.c.cohort, null().label("gap"), null().label("days"), func.count(),
                      *(func.sum(spans.c[f"done{index}"]) for index in steps))
               .group_by(spans.c.cohort))
    gap = union_all(*(select(literal(index).label("gap")) for index in steps)).subquery()
    days = case(*((gap.c.gap == index, spans.c[f"gap{index}"]) for index in steps))
    taken = (select(spans.c.cohort, gap.c.gap, days, func.count(), *(null() for _ in steps))
             .select_from(spans).join(gap, true()).where(days.is_not(None))
             .group_by(spans.c.cohort, gap.c.gap, days))
    return union_all(members, taken).order_by(members.selected_columns.cohort)


def funnel(filters: Filters) -> Table:
    """For each cohort of customers who signed up in the period: the share at each onboarding step, and the median
    days from signup to the welcome email and from each step to the next (over customers who reached both).

    Over every customer, from funnel_days (kept_funnel_counts); for some customers (a filter), counted by the
    database (funnel_counts). The medians are worked out exactly from how many customers took each number of days: a
    few rows per cohort rather than one per customer."""
    steps = len(metrics.STEPS)
    gaps = [f"Signup to {metrics.label(metrics.STEPS[0])}"] + [
        f"{metrics.label(before)} to {metrics.label(after)}" for before, after in zip(metrics.STEPS, metrics.STEPS[1:])
    ]
    table = Table("funnel", "Funnel per cohort: share at each step, median days between steps",
                  ["Cohort", "Customers", *(f"{metrics.label(step)} %" for step in metrics.STEPS),
                   *(f"{gap} (median days)" for gap in gaps)])
    cohorts: dict[str, tuple[list[int], dict[int, list]]] = {}  # customers and steps done; each gap's counts
    if filters.customer_conditions():
        counts = db.session.execute(funnel_counts(filters))
    else:
        counts = kept_funnel_counts(filters)
    for cohort, gap, days, count, *done in counts:
        # Cohorts told apart by the database but shown alike ("(none)") are one row, as one group.
        totals, taken = cohorts.setdefault(cohort or "(none)", ([0] * (1 + steps), {}))
        if gap is None:
            totals[:] = [total + int(value or 0) for total, value in zip(totals, (count, *done))]
        else:
            taken.setdefault(int(gap), []).append((int(days), int(count)))
    for cohort, ((size, *done), taken) in cohorts.items():
        table.rows.append([cohort, size, *(share(count, size) for count in done),
                           *(median_of(taken.get(index, [])) for index in range(steps))])
    return table


def kept_funnel_counts(filters: Filters) -> list[tuple]:
    """funnel_counts()' rows over every customer who signed up in the period, from funnel_days: a few rows per
    signup day and cohort, kept by the database as onboarding and customers change."""
    steps = len(metrics.STEPS)
    members: dict[str, list[int]] = {}
    taken: dict[tuple[str, int, int], int] = {}
    for cohort, measure, days, count in db.session.execute(
            select(FunnelDay.cohort, FunnelDay.measure, FunnelDay.days, func.sum(FunnelDay.customers))
            .where(FunnelDay.signup_day.between(filters.start, filters.end))
            .group_by(FunnelDay.cohort, FunnelDay.measure, FunnelDay.days).order_by(FunnelDay.cohort)):
        if not count:
            continue
        if measure < FunnelDay.GAP:
            members.setdefault(cohort, [0] * (1 + steps))[measure] += int(count)
        else:
            taken[(cohort, measure - FunnelDay.GAP, days)] = int(count)
    rows = [(cohort, None, None, *values) for cohort, values in members.items() if values[0]]
    rows += [(cohort, gap, days, count, *(None,) * steps) for (cohort, gap, days), count in taken.items()]
    return rows  # the cohorts in the database's order, as funnel_counts() gives them


def median_of(histogram: list[tuple[int, int]]) -> float | int | None:
    """The median of the values counted in (value, how many) pairs, to one decimal, whole numbers as int; None when
    there is none."""
    if not histogram:
        return None
    middle = round(float(statistics.median([value for value, count in sorted(histogram) for _ in range(count)])), 1)
    return int(middle) if middle.is_integer() else middle


# -- band migration ------------------------------------------------------------------------------------------

def migration_query(filters: Filters, before: str | None = None, after: str | None = None):
    """Customers with their band MIGRATION_DAYS before `end` and on `end` (None: no snapshot that day),
    optionally only those that moved from `before` to `after` (NO_SNAPSHOT for none)."""
    then, now = aliased(HealthScore), aliased(HealthScore)
    start = filters.end - dt.timedelta(days=MIGRATION_DAYS)
    query = (
        select(Customer, then.status.label("before"), now.status.label("after"))
        .outerjoin(then, and_(then.customer_id == Customer.id, then.date == start))
        .outerjoin(now, and_(now.customer_id == Customer.id, now.date == filters.end))
        .where(*filters.customer_conditions())
    )
    for band, column in ((before, then.status), (after, now.status)):
        if band == NO_SNAPSHOT:
            query = query.where(column.is_(None))
        elif band:
            query = query.where(column == band)
    return query, then, now


def migration(filters: Filters) -> Table:
    """How many customers moved from each band MIGRATION_DAYS before `end` to each band on `end`; a customer
    without a snapshot on either day is counted under "no snapshot". Over every customer, from the two days'
    rollups when `end`'s counts the moves of all its snapshots (migration_counted); for some customers (a
    filter), from their snapshots of the two days."""
    counts = None if filters.customer_conditions() else migration_counted(filters.end)
    if counts is None:
        query, then, now = migration_query(filters)
        grouped = query.with_only_columns(then.status, now.status, func.count()).group_by(then.status, now.status)
        counts = {(before or NO_SNAPSHOT, after or NO_SNAPSHOT): count
                  for before, after, count in db.session.execute(grouped)}
    bands = (*metrics.STATUSES, NO_SNAPSHOT)
    table = Table("migration", f"Band migration: band {MIGRATION_DAYS} days before {filters.end} (rows) to band on it (columns)",
                  ["From / to", *(metrics.label(band) for band in bands), "Total"])
    for before in bands:
        row = [counts.get((before, after), 0) for after in bands]
        table.rows.append([metrics.label(before), *row, sum(row)])
    return table


def migration_counted(end: dt.date) -> dict[tuple[str, str], int] | None:
    """Every customer's move from the band MIGRATION_DAYS before `end` to the band on it, counted from the two
    days' rollups and the number of customers: `end`'s rollup counts each of its snapshots' move (`moved:` measures),
    the earlier day's its snapshots' bands. None when `end`'s rollup does not count the moves of all its snapshots
    (a day written before the portal counted them: rollups.rebuild() counts them)."""
    start = end - dt.timedelta(days=MIGRATION_DAYS)
    day, earlier = rollups.day(end), rollups.day(start)
    moved = {tuple(measure.split(":")[1:]): value for measure, value in day.items()
             if measure.startswith("moved:") and value}
    if sum(moved.values()) != day["customers"]:
        return None
    counts = dict(moved)
    for band in metrics.STATUSES:
        gone = earlier[f"band:{band}"] - sum(value for (then, _), value in moved.items() if then == band)
        if gone:
            counts[(band, NO_SNAPSHOT)] = gone
    neither = every_customer() - sum(counts.values())
    if neither:
        counts[(NO_SNAPSHOT, NO_SNAPSHOT)] = neither
    return counts


def every_customer() -> int:
    """How many customers there are: the sum of every signup day's (retention_days, kept by triggers), not a count
    of the table (6 ms at 100,000)."""
    return int(db.session.scalar(select(func.coalesce(func.sum(RetentionDay.customers), 0))
                                 .where(RetentionDay.week == RetentionDay.SIGNED_UP)))


def migration_customers(filters: Filters, before: str, after: str, limit: int = 200) -> list[Customer]:
    query, _, _ = migration_query(filters, before, after)
    return db.session.scalars(query.order_by(func.lower(Customer.organization), Customer.id).limit(limit)).all()


# -- weekly trends -------------------------------------------------------------------------------------------

def group_key(grouping: str):
    """The column a trend is split by; None for one line over every customer."""
    if grouping == "cohort":
        return Customer.cohort
    if grouping == "industry":
        return Customer.industry
    if grouping == "team_size":
        return case(*((Customer.team_size <= high, f"{low}-{high}") for low, high in TEAM_SIZES if high),
                    else_=f"{TEAM_SIZES[-1][0]}+")
    return None


# Longer than this, SQLite reads the engagement table straight through: walking ix_engagement_date fetches each row
# from the table in index order, three to four times slower over a year, and SQLite's planner cannot tell how many
# rows a range holds. PostgreSQL chooses well by itself.
SQLITE_INDEX_DAYS = 90
TREND_COUNTS = ("issues_tagged", "prs_generated", "prs_merged")


def engagement_day(first: dt.date, last: dt.date):
    """Engagement.date to filter and group the days first..last by: on SQLite, for a long period, the same day as an
    expression, which no index serves."""
    if dialect() == "sqlite" and (last - first).days > SQLITE_INDEX_DAYS:
        return type_coerce(func.date(Engagement.date), Date)
    return Engagement.date


def daily_totals(first: dt.date, last: dt.date) -> dict[dt.date, tuple[int, ...]]:
    """For each day first..last with engagement rows: how many customers have one that day, then the day's COUNTS
    over them, from the shards of engagement_totals (kept by triggers on every write to engagement)."""
    columns = ("customers", *Engagement.COUNTS)
    query = (select(EngagementTotal.day, *(func.sum(getattr(EngagementTotal, column)) for column in columns))
             .where(EngagementTotal.day.between(first, last)).group_by(EngagementTotal.day))
    return {day: tuple(int(value) for value in values) for day, *values in db.session.execute(query) if values[0]}


def trends(filters: Filters, grouping: str = "overall") -> Table:
    """Per week (Monday) of the period and per group: issues tagged, PRs generated and merged, and the PR success
    rate (merged / generated, truncated, 0 when none was generated). Over every customer, from the daily totals
    (daily_totals); for a filter or a grouping, summed from the period's engagement."""
    key = group_key(grouping)
    narrowed = filters.customer_conditions()
    weeks: dict[tuple[dt.date, str], list[int]] = {}

    def add(day: dt.date, group: str, values) -> None:
        totals = weeks.setdefault((week_start(day), group), [0, 0, 0])
        for index, value in enumerate(values):
            totals[index] += int(value or 0)

    if key is None and not narrowed:
        picked = [Engagement.COUNTS.index(count) for count in TREND_COUNTS]
        for day, (_customers, *values) in daily_totals(filters.start, filters.end).items():
            add(day, "All customers", [values[index] for index in picked])
    else:
        sums = [func.sum(getattr(Engagement, count)) for count in TREND_COUNTS]
        day = engagement_day(filters.start, filters.end)
        grouped = (day,) if key is None else (day, key)
        query = (select(*grouped, *sums).join(Customer, Customer.id == Engagement.customer_id)
                 .where(day.between(filters.start, filters.end), *narrowed).group_by(*grouped))
        for day, *values in db.session.execute(query):
            add(day, "All customers" if key is None else (values.pop(0) or "(none)"), values)
    table = Table("trends", "Weekly trends: issues tagged, PRs generated and merged, PR success rate",
                  ["Week", metrics.label(grouping), "Issues tagged", "PRs generated", "PRs merged", "Success rate %"])
    for (week, group), (issues, generated, merged) in sorted(weeks.items()):
        table.rows.append([week.isoformat(), group, issues, generated, merged, metrics.success_rate(merged, generated)])
    return table
