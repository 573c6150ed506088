"""Completing and snoozing tasks. A snoozed task sleeps until its new due date, then counts as open again."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, and_, or_, select

from .. import audit, clock
from ..models import Customer, Intervention
from ..validation import ValidationError

MAX_SNOOZE_DAYS = 30
SHOWS = ("mine", "unassigned", "all")


def public_id(task: Intervention) -> str:
    return f"{Customer.PREFIX}{task.customer_id + 1000}/{task.id}"


def complete(task: Intervention, actor: str, user_id: int | None = None) -> None:
    if task.kind != "task" or task.status in ("done", "cancelled"):
        raise ValidationError("This task is already closed.", "status")
    changes = audit.apply_changes(task, {"status": "done", "completed_at": clock.now()})
    audit.record(actor, "interventions", public_id(task), changes, user_id)


def snooze(task: Intervention, days: int, actor: str, user_id: int | None = None) -> None:
    if task.kind != "task" or task.status in ("done", "cancelled"):
        raise ValidationError("This task is already closed.", "status")
    if not 1 <= days <= MAX_SNOOZE_DAYS:
        raise ValidationError(f"Snooze for 1 to {MAX_SNOOZE_DAYS} days.", "days")
    changes = audit.apply_changes(task, {"status": "snoozed", "due_date": clock.today() + dt.timedelta(days=days)})
    audit.record(actor, "interventions", public_id(task), changes, user_id)


def awake(today: dt.date):
    """Open tasks, and snoozed ones whose snooze has run out."""
    return or_(Intervention.status == "open", and_(Intervention.status == "snoozed", Intervention.due_date <= today))


def pending(show: str, user_id: int, today: dt.date, include_snoozed: bool = False) -> Select:
    """The tasks to do (awake, or every open and snoozed one), of the assignee `show` picks."""
    status = Intervention.status.in_(("open", "snoozed")) if include_snoozed else awake(today)
    # Pending as such as well: the condition of the partial indexes the list reads through.
    query = select(Intervention).where(Intervention.kind == "task", Intervention.status.in_(("open", "snoozed")),
                                       status)
    if show == "mine":
        query = query.where(Intervention.assignee_id == user_id)
    elif show == "unassigned":
        query = query.where(Intervention.assignee_id.is_(None))
    return query


def listing(show: str, user_id: int, today: dt.date, include_snoozed: bool = False) -> Select:
    """(task, customer) of the pending tasks, overdue first, then by due date (none last): the order of the
    ix_interventions_pending_* indexes (PostgreSQL keeps NULLs last in an ascending index).

    Read through a server-side cursor: PostgreSQL plans a cursor for its first rows (cursor_tuple_fraction), so it
    walks the index in list order and stops after the page, where for a plain query it may sort every pending task
    of the filter because, without statistics, it guesses there are only a few."""
    return (pending(show, user_id, today, include_snoozed).add_columns(Customer)
            .join(Customer, Customer.id == Intervention.customer_id)
            .order_by(Intervention.due_date.nulls_last(), Intervention.id)
            .execution_options(stream_results=True))


def for_customer(customer_id: int) -> Select:
    return (select(Intervention).where(Intervention.customer_id == customer_id, Intervention.kind == "task",
                                       Intervention.status.in_(("open", "snoozed")))
            .order_by(Intervention.due_date, Intervention.id))
