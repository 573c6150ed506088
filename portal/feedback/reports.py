"""The feedback page's tables: NPS by month, cohort and owner; CSAT by month; the themes of comments.

The NPS and CSAT tables add up feedback_days, the counts by UTC day, cohort and owner that the database keeps as
feedback is written (migration 0020): the page reads a row a day and group, whatever the number of answers. The
themes are worked out in Python over the period's latest comments only (THEMES_COMMENTS of them), read newest
first one window of days at a time, so a long period with many comments costs no more than its last few days.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select

from .. import validation
from ..analytics.reports import Filters, Table
from ..extensions import db
from ..models import Customer, Feedback, FeedbackDay, User
from . import analysis

NPS_HEADERS = ["Responses", "Promoters", "Passives", "Detractors", "NPS"]
COUNTED = ("promoters", "passives", "detractors", "csat_answers", "csat_sum")
# Themes are found in at most this many comments, the period's latest: enough for the top phrases to settle, and
# a bound on the Python work (themes() costs about 5 ms a thousand different comments).
THEMES_COMMENTS = 1_000
# The latest comments are read in windows of days back from the period's end, each this many times the one before.
FIRST_WINDOW_DAYS, WINDOW_GROWTH = 7, 4


def bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period's first moment and the moment after it, as UTC midnights."""
    return (dt.datetime.combine(start, dt.time(), dt.timezone.utc),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc))


def month_of(day):
    """The month of a date as "YYYY-MM", as SQL on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(day, "YYYY-MM")
    return func.strftime("%Y-%m", day)


def rollup_conditions(filters: Filters) -> list:
    """The cohort and owner filters on feedback_days, as Filters.customer_conditions() are on customers."""
    where = [FeedbackDay.cohort == filters.cohort] if filters.cohort else []
    if filters.owner == "none":
        where.append(FeedbackDay.owner_key == 0)
    elif (key := validation.database_key(filters.owner)) is not None:
        where.append(FeedbackDay.owner_key == key)
    return where


@dataclass
class Counts:
    """NPS answers by category and CSAT answers with their sum, of one month, cohort or owner."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat_answers: int = 0
    csat_sum: int = 0

    def add(self, other: Counts) -> None:
        for name in COUNTED:
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
    """The period's answers counted by (month, cohort, owner) from the daily rollup, then added up by each."""
    month = month_of(FeedbackDay.day).label("month")
    groups = (
        select(month, FeedbackDay.cohort, FeedbackDay.owner_key,
               *(func.sum(getattr(FeedbackDay, name)).label(name) for name in COUNTED))
        .where(FeedbackDay.day >= filters.start, FeedbackDay.day <= filters.end, *rollup_conditions(filters))
        .group_by(month, FeedbackDay.cohort, FeedbackDay.owner_key)
        .subquery()
    )
    query = select(groups, User.name).outerjoin(User, User.id == groups.c.owner_key)
    result = Grouped()
    for row in db.session.execute(query):
        counts = Counts(*(getattr(row, name) for name in COUNTED))
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
