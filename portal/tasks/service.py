"""Completing and snoozing tasks. A snoozed task sleeps until its new due date, then counts as open again."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, and_, case, or_, select

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


def listing(show: str, user_id: int, today: dt.date, include_snoozed: bool = False) -> Select:
    """(task, customer) of the tasks to do, overdue first, then by due date (none last)."""
    status = Intervention.status.in_(("open", "snoozed")) if include_snoozed else awake(today)
    query = (select(Intervention, Customer).join(Customer, Customer.id == Intervention.customer_id)
             .where(Intervention.kind == "task", status))
    if show == "mine":
        query = query.where(Intervention.assignee_id == user_id)
    elif show == "unassigned":
        query = query.where(Intervention.assignee_id.is_(None))
    undated = case((Intervention.due_date.is_(None), 1), else_=0)
    return query.order_by(undated, Intervention.due_date, Intervention.id)


def for_customer(customer_id: int) -> Select:
    return (select(Intervention).where(Intervention.customer_id == customer_id, Intervention.kind == "task",
                                       Intervention.status.in_(("open", "snoozed")))
            .order_by(Intervention.due_date, Intervention.id))
