"""How a view answers htmx: the piece it swaps, or the whole page for everything else."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import render_template, request, url_for
from sqlalchemy import Select, func, literal, select

from .extensions import db, htmx
from .validation import ValidationError


def wants_fragment() -> bool:
    """An htmx request for a piece of a page; boosted navigation and history restores want the whole page."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def fragment_or_page(partial: str, whole: str, whole_only: Callable[[], dict] | None = None, **context):
    """`whole_only`: what only the whole page shows around the partial, worked out only for the whole page."""
    if wants_fragment():
        response = render_template(partial, **context)
    else:
        response = render_template(whole, **context, **(whole_only() if whole_only else {}))
    return response, 200, {"Vary": "HX-Request"}


def filtered_list(queries, partial: str, whole: str, **context):
    """A log page filtered from its query string and paged: `queries` is its module, with a Filters class
    (from_args, conditions, args, page) and paginate(conditions, page). Links to other pages keep the filters."""
    filters = queries.Filters.from_args(request.args)
    page = queries.paginate(filters)
    return fragment_or_page(partial, whole, filters=filters, page=page, **context,
                            page_link=lambda number: url_for(".index", **filters.args(page=number)))


def saved_or_refused(change: Callable[[], object], render: Callable[..., object], refused_status: int = 422):
    """Make the change and commit, then render(); when it raises ValidationError, nothing is kept and
    render(error message, refused_status) shows why, in the piece of the page the form belongs to."""
    try:
        change()
    except ValidationError as error:
        db.session.rollback()
        return render(str(error), refused_status)
    db.session.commit()
    return render()


def query_args(values: dict) -> dict:
    """A list's state as query-string arguments for links: the first page and empty values left out."""
    return {key: value for key, value in values.items() if value and not (key == "page" and value == 1)}


# A list counts its rows up to this many and pages through the first of them: a view then reads at most this many
# index entries whatever the size of the history, and a filter narrows a longer list.
COUNT_CAP = 10_000


@dataclass
class Page:
    """One page of a list: its rows, how many rows in all (at most COUNT_CAP: `more` when there are more), this
    page's number and how many pages."""

    rows: list
    total: int
    page: int
    pages: int
    more: bool = False


def capped(total: int) -> tuple[int, bool]:
    """A count made with a LIMIT of COUNT_CAP + 1: the count to show, and whether the list goes on past it."""
    return min(total, COUNT_CAP), total > COUNT_CAP


def count(value: int, cap: int | None = None) -> str:
    """A count made with a LIMIT of cap + 1 (COUNT_CAP by default), as a page shows it: "10,000+" past the cap."""
    cap = COUNT_CAP if cap is None else cap
    return f"{cap:,}+" if value > cap else f"{value:,}"


def paginate(query: Select, number: int, size: int = 50, scalars: bool = False,
             counted: Select | None = None, known: int | None = None) -> Page:
    """A count of the query's rows (up to COUNT_CAP) and the `number`th page of them (the last page when it is
    past the end). `counted`: the same rows without what only the page shows (a join to a row that always exists),
    counted instead of the query; `known`: how many rows there are, kept elsewhere, so that none are counted."""
    if known is None:
        rows = ((query if counted is None else counted).order_by(None)
                .with_only_columns(literal(1), maintain_column_froms=True).limit(COUNT_CAP + 1))
        known = db.session.scalar(select(func.count()).select_from(rows.subquery()))
    total, more = capped(known)
    pages = max((total + size - 1) // size, 1)
    page = min(number, pages)
    result = db.session.execute(query.limit(size).offset((page - 1) * size))
    return Page(list(result.scalars() if scalars else result.all()), total, page, pages, more)
