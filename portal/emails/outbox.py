"""Queuing: every email is first a row of email_notifications with a unique dedupe key.

Queuing twice is harmless: INSERT ... ON CONFLICT (dedupe_key) DO NOTHING. Queuing happens in the
caller's transaction, so a change and the email it calls for commit (or roll back) together.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping, Sequence

from sqlalchemy import JSON, String, and_, cast, literal, select

from .. import clock
from ..extensions import db
from ..models import Customer, EmailNotification, Onboarding
from ..sql import insert_for
from . import content

TABLE = EmailNotification.__table__
CHUNK = 1000  # ids per IN list: well inside SQLite's limit on bound parameters


def queue_rows(rows: Sequence[Mapping]) -> int:
    """Insert outbox rows (customer_id, kind, dedupe_key, recipient, payload, [queued_at]); returns how many were new."""
    if not rows:
        return 0
    now = clock.now()
    values = [{"customer_id": None, "payload": {}, "queued_at": now, **row,
               "subject": content.subject(row["kind"], row.get("payload") or {})} for row in rows]
    statement = insert_for(TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(TABLE.c.id)
    return len(db.session.execute(statement, values).all())


def queue_milestone(customer: Customer, milestone: str) -> int:
    return queue_rows([{"customer_id": customer.id, "kind": "milestone", "recipient": customer.email,
                        "dedupe_key": content.milestone_key(customer.id, milestone),
                        "payload": {"milestone": milestone}}])


def queue_milestone_for(milestone: str, customer_ids: Iterable[int], unless_step: str | None = None) -> int:
    """The milestone email for many customers in one INSERT ... SELECT per chunk of ids (imports).

    unless_step leaves out customers whose onboarding already has that step ticked.
    """
    ids, queued = sorted(set(customer_ids)), 0
    key = literal("milestone:c") + cast(Customer.id + 1000, String) + literal(f":{milestone}")
    columns = ("customer_id", "kind", "dedupe_key", "recipient", "subject", "payload", "queued_at")
    for start in range(0, len(ids), CHUNK):
        chosen = select(
            Customer.id, literal("milestone"), key, Customer.email,
            literal(content.MILESTONE_SUBJECTS[milestone]), literal({"milestone": milestone}, JSON),
            literal(clock.now(), EmailNotification.queued_at.type),
        ).where(Customer.id.in_(ids[start:start + CHUNK]))
        if unless_step:
            chosen = chosen.join(Onboarding, and_(Onboarding.customer_id == Customer.id,
                                                  getattr(Onboarding, unless_step).is_(False)))
        statement = (insert_for(TABLE).from_select(columns, chosen)
                     .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(TABLE.c.id))
        queued += len(db.session.execute(statement).all())
    return queued


def queue_welcome(customer: Customer) -> int:
    return queue_milestone(customer, "welcome")


def requeue(notification: EmailNotification, when: dt.datetime | None = None) -> None:
    """Back to the queue for a fresh round of attempts (a re-send)."""
    notification.status, notification.attempts, notification.last_error = "queued", 0, ""
    notification.next_attempt_at, notification.claim_token, notification.claimed_until = when, None, None
