"""The feedback page's tables: NPS by month, cohort and owner; CSAT by month; the themes of comments."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ..analytics.reports import Filters, Table
from ..extensions import db
from ..models import Customer, Feedback, User
from . import analysis

NPS_HEADERS = ["Responses", "Promoters", "Passives", "Detractors", "NPS"]


def answers(start: dt.date, end: dt.date, cohort: str = "", owner: str = "") -> list[tuple]:
    """(answered on, nps, csat, comment, cohort, owner name) of feedback in the period, oldest first."""
    query = (
        select(Feedback.created_at, Feedback.nps, Feedback.csat, Feedback.comment, Customer.cohort, User.name)
        .join(Customer, Customer.id == Feedback.customer_id)
        .outerjoin(User, User.id == Customer.owner_id)
        .where(Feedback.created_at >= dt.datetime.combine(start, dt.time(), dt.timezone.utc),
               Feedback.created_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc))
        .where(*Filters(start, end, cohort, owner).customer_conditions())
        .order_by(Feedback.created_at)
    )
    return db.session.execute(query).all()


def nps_table(name: str, title: str, key_header: str, keyed: list[tuple[str, int]]) -> Table:
    groups: dict[str, list[int]] = {}
    for key, nps in keyed:
        counts = groups.setdefault(key, [0, 0, 0])
        counts[("promoter", "passive", "detractor").index(analysis.category(nps))] += 1
    table = Table(name, title, [key_header, *NPS_HEADERS])
    for key, (promoters, passives, detractors) in groups.items():
        table.rows.append([key, promoters + passives + detractors, promoters, passives, detractors,
                           analysis.nps_score(promoters, passives, detractors)])
    return table


def tables(rows: list[tuple]) -> dict[str, Table]:
    scored = [row for row in rows if row.nps is not None]
    month = lambda row: f"{row.created_at:%Y-%m}"  # noqa: E731 - a key, read where it is used
    csat: dict[str, list[int]] = {}
    for row in rows:
        if row.csat is not None:
            csat.setdefault(month(row), []).append(row.csat)
    comments = [row.comment for row in rows if row.comment]
    detractor_comments = [row.comment for row in scored if row.comment and analysis.category(row.nps) == "detractor"]
    return {
        "nps_by_month": nps_table("nps_by_month", "NPS by month", "Month", [(month(row), row.nps) for row in scored]),
        "nps_by_cohort": nps_table("nps_by_cohort", "NPS by cohort", "Cohort",
                                   sorted((row.cohort or "(none)", row.nps) for row in scored)),
        "nps_by_owner": nps_table("nps_by_owner", "NPS by owner", "Owner",
                                  sorted((row.name or "(nobody)", row.nps) for row in scored)),
        "csat_by_month": Table("csat_by_month", "CSAT by month (1-5)", ["Month", "Responses", "Average"],
                               [[key, len(values), round(sum(values) / len(values), 2)] for key, values in csat.items()]),
        "themes": theme_table("themes", "Themes of every comment", comments),
        "detractor_themes": theme_table("detractor_themes", "Themes of detractors' comments", detractor_comments),
    }


def theme_table(name: str, title: str, comments: list[str]) -> Table:
    return Table(name, title, ["Word or phrase", "Comments", "Share %"],
                 [[phrase, count, count * 100 // len(comments)] for phrase, count in analysis.themes(comments)])
