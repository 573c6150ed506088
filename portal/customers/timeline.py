"""A customer's timeline: events, interventions, emails, feedback and field changes, newest first."""
from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass

from sqlalchemy import or_, select

from ..extensions import db
from ..models import AuditLog, Customer, EmailNotification, Event, Feedback, Intervention, format_id

PAGE_SIZE = 20


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    kind: str
    title: str
    detail: str = ""


def _events(customer: Customer, limit: int):
    query = select(Event).where(Event.customer_id == customer.id).order_by(Event.received_at.desc()).limit(limit)
    for event in db.session.scalars(query):
        yield Entry(event.received_at, "event", f"{event.source}: {event.event_type}", event.outcome)


def _interventions(customer: Customer, limit: int):
    query = (select(Intervention).where(Intervention.customer_id == customer.id)
             .order_by(Intervention.created_at.desc()).limit(limit))
    for item in db.session.scalars(query):
        # A note or a call is a record, with no status worth showing; a task's is.
        status = item.status.replace("_", " ") if item.kind == "task" else ""
        parts = (item.body, f"due {item.due_date}" if item.due_date else "", status)
        yield Entry(item.created_at, item.kind, item.title, " · ".join(part for part in parts if part))


def _emails(customer: Customer, limit: int):
    query = (select(EmailNotification).where(EmailNotification.customer_id == customer.id)
             .order_by(EmailNotification.queued_at.desc()).limit(limit))
    for email in db.session.scalars(query):
        yield Entry(email.queued_at, "email", email.subject or email.kind, email.status)


def _feedback(customer: Customer, limit: int):
    query = select(Feedback).where(Feedback.customer_id == customer.id).order_by(Feedback.created_at.desc()).limit(limit)
    for item in db.session.scalars(query):
        scores = ", ".join(part for part in (f"NPS {item.nps}" if item.nps is not None else "",
                                             f"CSAT {item.csat}" if item.csat is not None else "") if part)
        yield Entry(item.created_at, "feedback", f"{scores or 'Feedback'} ({item.source})", item.comment)


def _changes(customer: Customer, limit: int):
    records = (customer.public_id, format_id("o", customer.id))
    query = (select(AuditLog).where(or_(*(AuditLog.record_id == record for record in records)))
             .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit))
    for change in db.session.scalars(query):
        if change.field == "record":
            yield Entry(change.created_at, "change", f"{change.table_name} record created", f"by {change.actor}")
        else:
            yield Entry(change.created_at, "change", f"{change.field}: {change.old_value or '–'} → {change.new_value or '–'}",
                        f"by {change.actor}")


SOURCES = (_events, _interventions, _emails, _feedback, _changes)


def page(customer: Customer, number: int) -> tuple[list[Entry], bool]:
    """Entries of page `number` (from 1) and whether there are more: a fixed five queries."""
    wanted = number * PAGE_SIZE + 1
    merged = heapq.merge(*(source(customer, wanted) for source in SOURCES), key=lambda entry: entry.at, reverse=True)
    entries = list(merged)[(number - 1) * PAGE_SIZE:wanted]
    return entries[:PAGE_SIZE], len(entries) > PAGE_SIZE
