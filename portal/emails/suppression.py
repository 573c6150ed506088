"""Who gets no email: unsubscribed or churned customers, and addresses that bounced or reported spam."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select

from ..extensions import db
from ..models import Customer, EmailNotification, Event

FINAL_STATUSES = ("bounced", "dropped")


def reasons(customer_ids: Iterable[int]) -> dict[int, str]:
    """{customer id: why no email may go to them} for those of the given customers who are suppressed."""
    ids = sorted({key for key in customer_ids if key is not None})
    if not ids:
        return {}
    found: dict[int, str] = {}
    bounced = select(EmailNotification.customer_id).where(
        EmailNotification.customer_id.in_(ids), EmailNotification.status.in_(FINAL_STATUSES))
    for key in db.session.scalars(bounced.distinct()):
        found[key] = "bounced"
    spam = select(Event.customer_id).where(Event.source == "email_provider", Event.event_type == "spamreport",
                                           Event.customer_id.in_(ids))
    for key in db.session.scalars(spam.distinct()):
        found[key] = "spam report"
    for key, unsubscribed_at, status in db.session.execute(
            select(Customer.id, Customer.unsubscribed_at, Customer.status).where(Customer.id.in_(ids))):
        if unsubscribed_at is not None:
            found[key] = "unsubscribed"
        elif status == "churned":
            found[key] = "churned"
    return found


def reason(customer: Customer) -> str | None:
    return reasons([customer.id]).get(customer.id)
