"""The customers table's queries: search, filters and sort, a page of 50 at a time."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Row, Select, and_, bindparam, func, or_, select
from werkzeug.datastructures import MultiDict

from .. import metrics
from ..extensions import db
from ..pages import Page, query_args
from ..models import CUSTOMER_STATUSES, Assessment, Customer, HealthScore, User, format_id, override_in_force
from ..validation import page_number

PAGE_SIZE = 50
SORTS = {
    "id": Customer.id,
    "organization": func.lower(Customer.organization),
    "email": Customer.email,
    "github": func.lower(Customer.github_username),
    "cohort": Customer.cohort,
    "industry": Customer.industry,
    "team_size": Customer.team_size,
    "owner": User.name,
    "status": Customer.status,
    "signup": Customer.signup_date,
    "score": HealthScore.score,
    "stage": HealthScore.stage,
}


@dataclass
class Filters:
    """What the table shows, read from the query string so every state has a URL."""

    q: str = ""
    cohort: str = ""
    stage: str = ""
    band: str = ""
    owner: str = ""
    status: str = ""
    sort: str = "organization"
    desc: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict) -> Filters:
        filters = cls(**{name: args.get(name, "").strip()[:100] for name in ("q", "cohort", "owner")})
        for name, allowed in (("stage", metrics.STAGES), ("band", metrics.STATUSES), ("status", CUSTOMER_STATUSES)):
            value = args.get(name, "")
            if value in allowed:
                setattr(filters, name, value)
        filters.sort = args.get("sort") if args.get("sort") in SORTS else "organization"
        filters.desc = args.get("dir") == "desc"
        filters.page = page_number(args.get("page"))
        return filters

    def args(self, **changes) -> dict:
        """The query-string arguments of this state with some changed (for links); empty ones left out."""
        values = {"q": self.q, "cohort": self.cohort, "stage": self.stage, "band": self.band, "owner": self.owner,
                  "status": self.status, "sort": self.sort, "dir": "desc" if self.desc else "", "page": self.page}
        values.update(changes)
        if values["sort"] == "organization":
            values["sort"] = ""
        return query_args(values)

    def sort_args(self, column: str) -> dict:
        descending = column == self.sort and not self.desc
        return self.args(sort=column, dir="desc" if descending else "", page=1)


def owned_by(owner: str) -> list:
    """The condition of an owner filter: "none" for nobody, a user id, or anything else for anyone."""
    if owner == "none":
        return [Customer.owner_id.is_(None)]
    return [Customer.owner_id == int(owner)] if owner.isdigit() else []


def customer_conditions(filters: Filters) -> list:
    """The WHERE clauses of the filters on the customer itself: search, cohort, status, owner."""
    where = []
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        where.append(or_(func.lower(Customer.email).like(pattern), func.lower(Customer.organization).like(pattern),
                         func.lower(Customer.github_username).like(pattern)))
    if filters.cohort:
        where.append(Customer.cohort == filters.cohort)
    if filters.status:
        where.append(Customer.status == filters.status)
    return where + owned_by(filters.owner)


def snapshot_conditions(filters: Filters) -> list:
    """The WHERE clauses of the filters on today's health snapshot: stage and band."""
    where = []
    if filters.stage:
        where.append(HealthScore.stage == filters.stage)
    if filters.band:
        where.append(HealthScore.status == filters.band)
    return where


def conditions(filters: Filters) -> tuple[list, bool]:
    """The WHERE clauses of the filters, and whether they need today's health snapshot."""
    on_snapshot = snapshot_conditions(filters)
    return customer_conditions(filters) + on_snapshot, bool(on_snapshot)


def todays_score(today: dt.date):
    return and_(HealthScore.customer_id == Customer.id, HealthScore.date == today)


# Only the owner can be NULL (nobody): nobody sorts last in both directions. The others are NOT NULL, and leaving
# NULLS LAST off them lets PostgreSQL walk their index backwards for a descending sort.
NULLABLE_SORTS = {"owner"}


def sort_order(filters: Filters) -> list:
    """The sort's key, then the id in the same direction for ties: so an index of (key, id) serves both directions."""
    key = SORTS[filters.sort]
    order = key.desc() if filters.desc else key.asc()
    return [order.nulls_last() if filters.sort in NULLABLE_SORTS else order,
            Customer.id.desc() if filters.desc else Customer.id]


# Sorts by a column of today's snapshot: the page is read from the snapshots (see snapshot_sorted_ids).
SNAPSHOT_SORTS = {"score", "stage"}


def ranked_ids_query(filters: Filters, today: dt.date) -> Select:
    """The ids of the matching customers with today's snapshot, in the sort's order. The query reads the day's
    snapshots (in score order from ix_health_scores_date_score) and checks each one's customer against the filters,
    so it stops at the page rather than joining and sorting every matching customer first."""
    key = SORTS[filters.sort]
    query = select(HealthScore.customer_id).where(HealthScore.date == today, *snapshot_conditions(filters))
    on_customer = customer_conditions(filters)
    if on_customer:
        query = query.where(select(Customer.id).where(Customer.id == HealthScore.customer_id, *on_customer).exists())
    if filters.desc:
        return query.order_by(key.desc(), HealthScore.customer_id.desc())
    return query.order_by(key.asc(), HealthScore.customer_id.asc())


def unranked_ids_query(filters: Filters, today: dt.date) -> Select:
    """The ids of the matching customers without today's snapshot, which a snapshot sort shows last."""
    snapshot = select(HealthScore.id).where(todays_score(today)).exists()
    query = select(Customer.id).where(*customer_conditions(filters), ~snapshot)
    return query.order_by(Customer.id.desc() if filters.desc else Customer.id)


def snapshot_sorted_ids(filters: Filters, today: dt.date, offset: int) -> list[int]:
    """A page of a snapshot sort: the ranked customers, then those without today's snapshot. Those are normally
    none (every change recalculates the customers it touches, and the day's first page view everyone), so the
    second query runs only on a page the ranked ones do not fill, and never with a stage or band filter, which
    only customers with a snapshot can match."""
    ranked = ranked_ids_query(filters, today)
    ids = db.session.scalars(ranked.limit(PAGE_SIZE).offset(offset)).all()
    if len(ids) == PAGE_SIZE or snapshot_conditions(filters):
        return ids
    before = offset + len(ids) if ids else db.session.scalar(select(func.count()).select_from(ranked.subquery()))
    rest = unranked_ids_query(filters, today).limit(PAGE_SIZE - len(ids)).offset(max(offset - before, 0))
    return ids + db.session.scalars(rest).all()


def page_ids_query(filters: Filters, today: dt.date) -> Select:
    """The ids of the table's rows in order for a sort by a customer's own column (SNAPSHOT_SORTS are read from the
    snapshots), joining the snapshot or owner only when a filter or the sort needs it."""
    where, needs_health = conditions(filters)
    query = select(Customer.id)
    if needs_health:
        query = query.join(HealthScore, todays_score(today))
    if filters.sort == "owner":
        query = query.outerjoin(User, User.id == Customer.owner_id)
    return query.where(*where).order_by(*sort_order(filters))


@dataclass
class TableRow:
    """One customer as the table shows them: the editable values (named as the cells are, so the cells macro reads
    a row and a Customer alike), then today's stage, score and band, None without today's snapshot. The band is
    the team's override while one is in force, and `overridden` says so."""

    public_id: str
    organization: str
    cohort: str
    industry: str
    team_size: int
    owner_name: str
    status: str
    github_username: str
    stage: str | None
    score: int | None
    band: str | None
    overridden: bool


def rows_query() -> Select:
    """Only the columns the table shows of the customers `ids`, in no particular order, with their snapshot of the day
    `today`: loading whole Customer, HealthScore and Assessment objects took longer than the query itself. The
    snapshot join names the ids again so that PostgreSQL looks up those 50 snapshots in the (customer_id, date)
    index rather than hashing all of the day's."""
    ids, today = bindparam("ids", expanding=True), bindparam("today")
    return (
        select(Customer.id, Customer.organization, Customer.cohort, Customer.industry, Customer.team_size,
               User.name, Customer.status, Customer.github_username, HealthScore.stage, HealthScore.score,
               HealthScore.status, Assessment.band_override, Assessment.override_until)
        .outerjoin(HealthScore, and_(todays_score(today), HealthScore.customer_id.in_(ids)))
        .outerjoin(Assessment, Assessment.customer_id == Customer.id)
        .outerjoin(User, User.id == Customer.owner_id)
        .where(Customer.id.in_(ids))
    )


# Built once, as its ids and day are parameters: putting it together took as long as running it.
ROWS = rows_query()


def table_row(row: Row, today: dt.date) -> TableRow:
    key, organization, cohort, industry, team_size, owner, status, github, stage, score, band, override, until = row
    overriding = override_in_force(override, until, today)
    return TableRow(format_id(Customer.PREFIX, key), organization, cohort, industry, team_size, owner or "", status,
                    github, stage, score, overriding or band, overriding is not None)


def count_query(filters: Filters, today: dt.date) -> Select:
    """How many rows the table has: the customers alone, joined to the snapshot only when a filter needs it.
    count(*) rather than count(id): the database may then count the entries of its smallest index."""
    where, needs_health = conditions(filters)
    query = select(func.count()).select_from(Customer)
    if needs_health:
        query = query.join(HealthScore, todays_score(today))
    return query.where(*where)


def paginate(filters: Filters, today: dt.date) -> Page:
    """One page of the table in two steps. Sorting every matching customer joined to its snapshot and owner, with
    all their columns, before LIMIT/OFFSET made the page slow; so a narrow query finds the page's 50 ids first (the
    default sort walks ix_customers_organization_lower and stops at 50), then only those rows are loaded and put
    back in that order."""
    total = db.session.scalar(count_query(filters, today))
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(filters.page, pages)
    offset = (page - 1) * PAGE_SIZE
    if filters.sort in SNAPSHOT_SORTS:
        ids = snapshot_sorted_ids(filters, today, offset)
    else:
        ids = db.session.scalars(page_ids_query(filters, today).limit(PAGE_SIZE).offset(offset)).all()
    position = {key: index for index, key in enumerate(ids)}
    rows = db.session.execute(ROWS, {"ids": ids, "today": today}).all() if ids else []
    rows.sort(key=lambda row: position[row[0]])
    return Page([table_row(row, today) for row in rows], total, page, pages)


def cohorts_in_use() -> Select:
    """The distinct cohorts, found by stepping through ix_customers_cohort from one value to the next: a handful of
    index lookups, where SELECT DISTINCT reads an index entry per customer (PostgreSQL has no skip scan)."""
    used = select(func.min(Customer.cohort).label("cohort")).cte("used", recursive=True)
    following = select(func.min(Customer.cohort)).where(Customer.cohort > used.c.cohort).scalar_subquery()
    used = used.union_all(select(following).where(used.c.cohort.is_not(None)))
    return select(used.c.cohort).where(used.c.cohort.is_not(None))


# Built once, like ROWS: putting the recursive query together took longer than running it.
COHORTS_IN_USE = cohorts_in_use()


def cohorts() -> list[str]:
    """Cohorts in use, for the filter and as suggestions (VIP, Beta, GA first)."""
    used = set(db.session.scalars(COHORTS_IN_USE).all()) - {""}
    return [c for c in ("VIP", "Beta", "GA") if c in used] + sorted(used - {"VIP", "Beta", "GA"})


def team() -> list[User]:
    return db.session.scalars(select(User).where(User.active).order_by(User.name)).all()


def industries() -> list[str]:
    return sorted(set(db.session.scalars(select(Customer.industry).distinct()).all()) - {""})
