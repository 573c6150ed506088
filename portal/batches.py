"""How the scheduled jobs read big tables: customers in batches of ids, each customer's rows through its own index.

A job walks the customers BATCH at a time by primary key and, for each customer of a batch, probes the
(customer_id, date) unique indexes of the daily tables for just the days it needs. The cost then follows the
customers, whatever the length of the history, and does not rest on the planner's statistics: right after the
day's recalculation they have not seen today's snapshots, and a plan built on "today has next to no rows" reads
all of them once per customer. So the probes are scalar subqueries, which PostgreSQL runs once per outer row and
never turns into a join, and they look for the latest row up to a day (a range on date, ordered by the index)
rather than for date = today.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

from sqlalchemy import ColumnElement, Select, func, literal, select

from .extensions import db
from .models import Customer, HealthScore

BATCH = 2000  # customers per batch: a few thousand rows in memory and in one statement's parameters


def id_ranges(column=Customer.id, size: int | None = None, progress=None) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of `size` (BATCH) consecutive keys of an integer primary key, in order: one
    index-only read of the keys per batch; the batch's own query then takes `column BETWEEN first AND last`.

    progress(done, total), when given, hears the last key of each batch the caller has finished (it asks for the
    next one, after committing the batch) against the largest key."""
    size = size or BATCH
    total = db.session.scalar(select(func.max(column))) if progress is not None else None
    after = None
    while True:
        query = select(column).order_by(column).limit(size)
        keys = db.session.scalars(query if after is None else query.where(column > after)).all()
        if after is not None and progress is not None:
            progress(after, total)
        if not keys:
            return
        yield keys[0], keys[-1]
        if len(keys) < size:
            if progress is not None:
                progress(total, total)
            return
        after = keys[-1]


def latest(column, before: dt.date | None = None, through: dt.date | None = None):
    """A column of the customer's latest health snapshot before a day (or on or before it), as a scalar subquery
    correlated with the enclosing query's customers: one backward probe of the (customer_id, date) unique index;
    NULL with none."""
    query = select(column).where(HealthScore.customer_id == Customer.id)
    if before is not None:
        query = query.where(HealthScore.date < before)
    if through is not None:
        query = query.where(HealthScore.date <= through)
    return query.order_by(HealthScore.date.desc()).limit(1).scalar_subquery()


def absent(query: Select) -> ColumnElement[bool]:
    """NOT EXISTS (query) as a probe per outer row: PostgreSQL may plan a NOT EXISTS as an anti-join reading the
    whole inner table, where a scalar subquery stays one index probe."""
    return query.with_only_columns(literal(1)).limit(1).scalar_subquery().is_(None)
