"""The feedback page's tables: NPS by month, cohort and owner; CSAT by month; the themes of comments.

The NPS and CSAT tables are counted by the database, grouped by month, cohort and owner, so the page reads a few
dozen groups whatever the number of answers. The themes are worked out in Python over the period's latest comments
only (THEMES_COMMENTS of them), read newest first one window of days at a time, so a long period with many
comments costs no more than its last few days.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, func, select

from ..analytics.reports import Filters, Table
from ..extensions import db
from ..models import Customer, Feedback, User
from . import analysis

NPS_HEADERS = ["Responses", "Promoters", "Passives", "Detractors", "NPS"]
# Themes are found in at most this many comments, the period's latest: enough for the top phrases to settle, and
# a bound on the Python work (themes() costs about 5 ms a thousand comments).
THEMES_COMMENTS = 1_000
# The latest comments are read in windows of days back from the period's end, each this many times the one before.
FIRST_WINDOW_DAYS, WINDOW_GROWTH = 7, 4


def bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period's first moment and the moment after it, as UTC midnights."""
    return (dt.datetime.combine(start, dt.time(), dt.timezone.utc),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc))


def month_of(moment):
    """The UTC month of a timestamp as "YYYY-MM", as SQL on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM")
    return func.strftime("%Y-%m", moment)


@dataclass
class Counts:
    """NPS answers by category and CSAT answers with their sum, of one month, cohort or owner."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat_answers: int = 0
    csat_sum: int = 0

    def add(self, other: Counts) -> None:
        for name in ("promoters", "passives", "detractors", "csat_answers", "csat_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def nps_answers(self) -> int:
        return self.promoters + self.passives + self.detractors


@dataclass
class Grouped:
    by_month: dict[str, Counts] = field(default_factory=dict)
    by_cohort: dict[str, Counts] = field(default_factory=dict)
    by_owner: dict[str, Counts] = field(default_factory=dict)


def grouped(filters: Filters) -> Grouped:
    """The period's answers counted by (month, cohort, owner) in the database, then added up by each of them."""
    first, after = bounds(filters.start, filters.end)
    month = month_of(Feedback.created_at).label("month")
    category = lambda low, high: func.count(case((Feedback.nps.between(low, high), 1)))  # noqa: E731
    groups = (
        select(month, Customer.cohort, Customer.owner_id,
               category(analysis.PASSIVE_MAX + 1, 10).label("promoters"),
               category(analysis.DETRACTOR_MAX + 1, analysis.PASSIVE_MAX).label("passives"),
               category(0, analysis.DETRACTOR_MAX).label("detractors"),
               func.count(Feedback.csat).label("csat_answers"), func.coalesce(func.sum(Feedback.csat), 0).label("csat_sum"))
        .join(Customer, Customer.id == Feedback.customer_id)
        .where(Feedback.created_at >= first, Feedback.created_at < after, *filters.customer_conditions())
        .group_by(month, Customer.cohort, Customer.owner_id)
        .subquery()
    )
    query = (select(groups, User.name).outerjoin(User, User.id == groups.c.owner_id))
    result = Grouped()
    for row in db.session.execute(query):
        counts = Counts(row.promoters, row.passives, row.detractors, row.csat_answers, row.csat_sum)
        for table, key in ((result.by_month, row.month), (result.by_cohort, row.cohort or "(none)"),
                           (result.by_owner, row.name or "(nobody)")):
            table.setdefault(key, Counts()).add(counts)
    return result


def latest_comments(filters: Filters, limit: int) -> list[tuple[str, int | None]]:
    """(comment, nps) of up to `limit` of the period's latest comments, newest first. Each window of days is read
    whole whatever the plan, so the windows grow from a week: the rows read stay near the rows needed."""
    first, after = bounds(filters.start, filters.end)
    query = select(Feedback.comment, Feedback.nps).where(Feedback.comment != "")
    if conditions := filters.customer_conditions():
        query = query.join(Customer, Customer.id == Feedback.customer_id).where(*conditions)
    found: list[tuple[str, int | None]] = []
    days, window_end = FIRST_WINDOW_DAYS, after
    while len(found) < limit and window_end > first:
        window_start = max(window_end - dt.timedelta(days=days), first)
        found += db.session.execute(
            query.where(Feedback.created_at >= window_start, Feedback.created_at < window_end)
            .order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit - len(found))).all()
        days, window_end = days * WINDOW_GROWTH, window_start
    return found


def tables(filters: Filters) -> dict[str, Table]:
    counts = grouped(filters)
    latest = latest_comments(filters, THEMES_COMMENTS + 1)
    capped = len(latest) > THEMES_COMMENTS
    latest = latest[:THEMES_COMMENTS]
    comments = [comment for comment, _ in latest]
    detractor_comments = [comment for comment, nps in latest
                          if nps is not None and analysis.category(nps) == "detractor"]
    among = f" among the latest {THEMES_COMMENTS:,}" if capped else ""
    csat = {month: item for month, item in sorted(counts.by_month.items()) if item.csat_answers}
    return {
        "nps_by_month": nps_table("nps_by_month", "NPS by month", "Month", counts.by_month),
        "nps_by_cohort": nps_table("nps_by_cohort", "NPS by cohort", "Cohort", counts.by_cohort),
        "nps_by_owner": nps_table("nps_by_owner", "NPS by owner", "Owner", counts.by_owner),
        "csat_by_month": Table("csat_by_month", "CSAT by month (1-5)", ["Month", "Responses", "Average"],
                               [[month, item.csat_answers, round(item.csat_sum / item.csat_answers, 2)]
                                for month, item in csat.items()]),
        "themes": theme_table("themes", f"Themes of the latest {THEMES_COMMENTS:,} comments" if capped
                              else "Themes of every comment", comments),
        "detractor_themes": theme_table("detractor_themes", f"Themes of detractors' comments{among}",
                                        detractor_comments),
    }


def nps_table(name: str, title: str, key_header: str, groups: dict[str, Counts]) -> Table:
    """One row a key that has NPS answers, in key order."""
    table = Table(name, title, [key_header, *NPS_HEADERS])
    for key, item in sorted(groups.items()):
        if item.nps_answers:
            table.rows.append([key, item.nps_answers, item.promoters, item.passives, item.detractors,
                               analysis.nps_score(item.promoters, item.passives, item.detractors)])
    return table


def theme_table(name: str, title: str, comments: list[str]) -> Table:
    return Table(name, title, ["Word or phrase", "Comments", "Share %"],
                 [[phrase, count, count * 100 // len(comments)] for phrase, count in analysis.themes(comments)])
