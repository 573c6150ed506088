"""The customers table's queries: search, filters and sort, a page of 50 at a time."""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import (ARRAY, CompoundSelect, Integer, Row, Select, and_, any_, bindparam, cast, func, or_, select,
                        literal_column, null, union_all)
from werkzeug.datastructures import MultiDict

from .. import sql, validation
from ..health import metrics
from ..extensions import db
from ..pages import COUNT_CAP, Page, capped, query_args
from ..models import CUSTOMER_STATUSES, Assessment, Customer, HealthCurrent, User, format_id, override_in_force

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
    "score": HealthCurrent.score,
    "stage": HealthCurrent.stage,
}


@dataclass(frozen=True)
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
        values = {name: args.get(name, "").strip()[:100] for name in ("q", "cohort", "owner")}
        for name, allowed in (("stage", metrics.STAGES), ("band", metrics.STATUSES), ("status", CUSTOMER_STATUSES)):
            values[name] = args.get(name) if args.get(name) in allowed else ""
        return cls(**values, sort=args.get("sort") if args.get("sort") in SORTS else "organization",
                   desc=args.get("dir") == "desc", page=validation.page_number(args.get("page")))

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

    def shape(self) -> Filters:
        """The same filters on page 1 with a placeholder for each value: what the table's statements depend on. They
        are built once for each shape and given the values as parameters (see params)."""
        def given(value: str) -> str:
            return value and "?"

        owner = "none" if self.owner == "none" else "id" if validation.database_key(self.owner) else ""
        return Filters(q=given(self.q), cohort=given(self.cohort), stage=given(self.stage), band=given(self.band),
                       owner=owner, status=given(self.status), sort=self.sort, desc=self.desc)

    def params(self, today: dt.date) -> dict:
        """The values of the statements' parameters (more than a shape's statements need does no harm)."""
        typed = self.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")  # as typed, not wildcards
        return {"pattern": f"%{typed}%", "cohort": self.cohort, "stage": self.stage, "band": self.band,
                "owner": validation.database_key(self.owner), "status": self.status, "today": today}


# The statements' parameters: their values come from Filters.params, the page's place from paginate. The page's
# place (integers only) is written into the SQL at each execution rather than sent as a parameter: knowing it,
# PostgreSQL keeps one plan for the prepared statement of a page, where an unknown offset had it plan every
# execution afresh.
TODAY, PATTERN = bindparam("today"), bindparam("pattern")
LIMIT = bindparam("limit", PAGE_SIZE, Integer, literal_execute=True)
OFFSET, TAIL_LIMIT, TAIL_OFFSET = (bindparam(name, type_=Integer, literal_execute=True)
                                   for name in ("offset", "tail_limit", "tail_offset"))


def owned_by(owner: str) -> list:
    """The condition of an owner filter: "none" for nobody, a user id, or anything else for anyone."""
    if owner == "none":
        return [Customer.owner_id.is_(None)]
    key = validation.database_key(owner)
    return [Customer.owner_id == key] if key is not None else []


def customer_conditions(shape: Filters) -> list:
    """The WHERE clauses of the filters on the customer itself: search, cohort, status, owner (as owned_by)."""
    where = []
    if shape.q:
        where.append(or_(*(func.lower(column).like(PATTERN, escape="\\")
                           for column in (Customer.email, Customer.organization, Customer.github_username))))
    if shape.cohort:
        where.append(Customer.cohort == bindparam("cohort"))
    if shape.status:
        where.append(Customer.status == bindparam("status"))
    if shape.owner == "none":
        where.append(Customer.owner_id.is_(None))
    elif shape.owner:
        where.append(Customer.owner_id == bindparam("owner"))
    return where


def snapshot_conditions(shape: Filters) -> list:
    """The WHERE clauses of the filters on the customer's current health: stage and band."""
    where = []
    if shape.stage:
        where.append(HealthCurrent.stage == bindparam("stage"))
    if shape.band:
        where.append(HealthCurrent.band == bindparam("band"))
    return where


def conditions(shape: Filters) -> tuple[list, bool]:
    """The WHERE clauses of the filters, and whether they need the current health row."""
    on_snapshot = snapshot_conditions(shape)
    return customer_conditions(shape) + on_snapshot, bool(on_snapshot)


# Each customer's current health (their latest snapshot): one row per customer, so joining it costs a key lookup
# whatever the length of the history, and its statistics do not change with the day's recalculation.
TODAYS_SCORE = HealthCurrent.customer_id == Customer.id

# Only the owner can be NULL (nobody): nobody sorts last in both directions. The others are NOT NULL, and leaving
# NULLS LAST off them lets PostgreSQL walk their index backwards for a descending sort.
NULLABLE_SORTS = {"owner"}


def sort_order(shape: Filters) -> list:
    """The sort's key, then the id in the same direction for ties: so an index of (key, id) serves both directions."""
    key = SORTS[shape.sort]
    order = key.desc() if shape.desc else key.asc()
    return [order.nulls_last() if shape.sort in NULLABLE_SORTS else order,
            Customer.id.desc() if shape.desc else Customer.id]


# Sorts by a column of the current health: the page is read from health_current (see ranked_ids_query).
SNAPSHOT_SORTS = {"score", "stage"}


def ranked_ids_query(shape: Filters) -> Select:
    """The ids of the matching customers with a current health row, in the sort's order. The query reads
    health_current in score order (ix_health_current_score) and checks each one's customer against the filters, so
    it stops at the page rather than joining and sorting every matching customer first.

    The check is a scalar subquery rather than EXISTS, which PostgreSQL turns into a join: the plan it keeps for a
    prepared statement, made without the filters' values, then hashed every customer and sorted every row, so it
    planned each execution afresh instead. A scalar subquery leaves it this one plan. Its only WHERE is the primary
    key, and the filters are what it selects: given them as WHERE clauses, PostgreSQL without fresh statistics
    probed ix_customers_status_cohort instead and read every customer of the cohort for each row. What that costs:
    a filter few customers match reads many rows before the page is full."""
    key = SORTS[shape.sort]
    query = select(HealthCurrent.customer_id.label("id")).where(*snapshot_conditions(shape))
    on_customer = customer_conditions(shape)
    if on_customer:
        matches = select(and_(*on_customer)).where(Customer.id == HealthCurrent.customer_id)
        query = query.where(matches.correlate(HealthCurrent).scalar_subquery())
    if shape.desc:
        return query.order_by(key.desc(), HealthCurrent.customer_id.desc())
    return query.order_by(key.asc(), HealthCurrent.customer_id.asc())


def unranked_ids_query(shape: Filters) -> Select:
    """The ids of the matching customers without a health row yet, which a health sort shows last."""
    scored = select(HealthCurrent.customer_id).where(TODAYS_SCORE).exists()
    query = select(Customer.id).where(*customer_conditions(shape), ~scored)
    return query.order_by(Customer.id.desc() if shape.desc else Customer.id)


def page_ids_query(shape: Filters) -> Select:
    """The ids of the table's rows in order for a sort by a customer's own column (SNAPSHOT_SORTS are read from the
    snapshots), joining the snapshot or owner only when a filter or the sort needs it."""
    where, needs_health = conditions(shape)
    query = select(Customer.id)
    if needs_health:
        query = query.join(HealthCurrent, TODAYS_SCORE)
    if shape.sort == "owner":
        query = query.outerjoin(User, User.id == Customer.owner_id)
    return query.where(*where).order_by(*sort_order(shape))


def ids_query(shape: Filters) -> Select:
    return ranked_ids_query(shape) if shape.sort in SNAPSHOT_SORTS else page_ids_query(shape)


@dataclass
class TableRow:
    """One customer as the table shows them: the editable values (named as a Customer names them, the owner as
    owner_name, so the table's written-out cells and the cells macro read the same names), then today's stage,
    score and band, None before their first snapshot. The band is the team's override while one is in force, and
    `overridden` says so."""

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


ROW_COLUMNS = (Customer.id, Customer.organization, Customer.cohort, Customer.industry, Customer.team_size, User.name,
               Customer.status, Customer.github_username, HealthCurrent.stage, HealthCurrent.score, HealthCurrent.band,
               Assessment.band_override, Assessment.override_until)


def on_page(ids: Select | CompoundSelect, dialect: str):
    """The condition that a customer is one of those `ids` selects. PostgreSQL, given the ids as a join or an
    IN (subquery), hashed every customer to find 50; given `id = ANY(an array of them)` it finds the ids first
    and looks each customer up by primary key."""
    page_ids = ids.subquery("page_ids")
    if dialect == "postgresql":
        return Customer.id == any_(cast(select(func.array_agg(page_ids.c.id)).scalar_subquery(), ARRAY(Integer)))
    return Customer.id.in_(select(page_ids.c.id))


def count_query(shape: Filters) -> Select:
    """How many rows the table has, up to COUNT_CAP + 1: the customers alone, joined to the current health
    only when a filter needs it; the database may then count the entries of its smallest index, and stops at the
    cap."""
    where, needs_health = conditions(shape)
    rows = select(literal_column("1")).select_from(Customer)
    if needs_health:
        rows = rows.join(HealthCurrent, TODAYS_SCORE)
    return select(func.count()).select_from(rows.where(*where).limit(COUNT_CAP + 1).subquery())


# The statements of one shape of filters are built once: putting one together (and working out its cache key)
# took SQLAlchemy about as long as the database took to run it.
@functools.lru_cache(maxsize=512)
def page_statement(shape: Filters, dialect: str, with_tail: bool = False) -> Select:
    """The rows of a page in the table's order with their current health and, in every row, how many rows the
    whole table has. Only the columns the table shows: loading whole Customer, HealthScore and Assessment objects
    took longer than the query itself. `with_tail`: the page goes on past the ranked customers of a snapshot sort
    with those without a health row yet, which sort last."""
    ids = ids_query(shape).limit(LIMIT).offset(OFFSET)
    if with_tail:
        rest = unranked_ids_query(shape).limit(TAIL_LIMIT).offset(TAIL_OFFSET)
        ids = union_all(select(ids.subquery()), select(rest.subquery()))
    key = SORTS[shape.sort]
    return (
        select(count_query(shape).correlate(None).scalar_subquery(), *ROW_COLUMNS)
        .outerjoin(HealthCurrent, TODAYS_SCORE)
        .outerjoin(Assessment, Assessment.customer_id == Customer.id)
        .outerjoin(User, User.id == Customer.owner_id)
        .where(on_page(ids, dialect))
        .order_by(key.desc().nulls_last() if shape.desc else key.asc().nulls_last(),
                  Customer.id.desc() if shape.desc else Customer.id)
    )


@functools.lru_cache(maxsize=512)
def count_statement(shape: Filters, ranked_only: bool = False) -> Select:
    """How many rows the table has, or with `ranked_only` how many of them have a health row."""
    return select(func.count()).select_from(ranked_ids_query(shape).subquery()) if ranked_only else count_query(shape)


def table_row(row: Row, today: dt.date) -> TableRow:
    _total, key, organization, cohort, industry, team_size, owner, status, github, stage, score, band, override, \
        until = row
    overriding = override_in_force(override, until, today)
    return TableRow(format_id(Customer.PREFIX, key), organization, cohort, industry, team_size, owner or "", status,
                    github, stage, score, overriding or band, overriding is not None)


def paginate(filters: Filters, today: dt.date) -> Page:
    """One page of the table, normally in one statement: a narrow query finds the page's 50 ids (the default sort
    walks ix_customers_organization_lower and stops at 50, a snapshot sort walks ix_health_current_score), then
    only those rows are joined to their snapshot and owner, and the count rides along. Sorting every matching
    customer joined to all of that before LIMIT/OFFSET made the page slow. A second statement runs only on an
    empty page (for the count, and the last page when the number is past it) and on the page where a snapshot
    sort reaches the customers without a health row yet, who follow the ranked ones."""
    shape, dialect, params = filters.shape(), sql.dialect(), filters.params(today)

    def rows_of(number: int, **tail) -> list[Row]:
        statement = page_statement(shape, dialect, bool(tail))
        return db.session.execute(statement, {**params, "offset": (number - 1) * PAGE_SIZE, **tail}).all()

    number = filters.page
    rows = rows_of(number)
    total, more = capped(rows[0][0] if rows else db.session.scalar(count_statement(shape), params))
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    if number > pages:
        number = pages
        rows = rows_of(number) if total else []
    offset = (number - 1) * PAGE_SIZE
    if shape.sort in SNAPSHOT_SORTS and len(rows) < PAGE_SIZE and offset + len(rows) < total:
        before = offset + len(rows) if rows else db.session.scalar(count_statement(shape, ranked_only=True), params)
        rows = rows_of(number, tail_limit=PAGE_SIZE - len(rows), tail_offset=max(offset - before, 0))
    return Page([table_row(row, today) for row in rows], total, number, pages, more)


def values_in_use(column) -> Select:
    """The distinct values of an indexed customers column, found by stepping through its index from one value to the
    next: a handful of index lookups, where SELECT DISTINCT reads an index entry (or a row) per customer
    (PostgreSQL has no skip scan)."""
    used = select(func.min(column).label("value")).cte(f"used_{column.key}", recursive=True)
    following = select(func.min(column)).where(column > used.c.value).scalar_subquery()
    used = used.union_all(select(following).where(used.c.value.is_not(None)))
    return select(used.c.value.label(column.key)).where(used.c.value.is_not(None))


# Built once, like the page statements: putting the recursive query together took longer than running it.
COHORTS_IN_USE = values_in_use(Customer.cohort)
INDUSTRIES_IN_USE = values_in_use(Customer.industry)  # ix_customers_industry


def in_order(cohorts: set[str]) -> list[str]:
    """VIP, Beta and GA first, then the others by name; no empty one."""
    used = cohorts - {""}
    return [c for c in ("VIP", "Beta", "GA") if c in used] + sorted(used - {"VIP", "Beta", "GA"})


def cohorts() -> list[str]:
    """Cohorts in use, for the filter and as suggestions."""
    return in_order(set(db.session.scalars(COHORTS_IN_USE).all()))


TEAM = select(User).where(User.active).order_by(User.name)


def team() -> list[User]:
    """The active team members, by name."""
    return db.session.scalars(TEAM).all()


class FiltersChoices(NamedTuple):
    cohorts: list[str]
    team: list[Row]  # the id and name of each active team member, by name


# The cohorts in use (rows without a user id) and the active team, in one statement built once.
CHOICES = union_all(select(null().label("id"), COHORTS_IN_USE.subquery().c.cohort.label("name")),
                    select(User.id, User.name).where(User.active)).order_by(literal_column("name"))


def filters_choices() -> FiltersChoices:
    """What the table's filters offer, cohorts() and team() in one round trip to the database."""
    rows = db.session.execute(CHOICES).all()
    return FiltersChoices(in_order({row.name for row in rows if row.id is None}),
                          [row for row in rows if row.id is not None])


def industries() -> list[str]:
    return sorted(set(db.session.scalars(INDUSTRIES_IN_USE).all()) - {""})
