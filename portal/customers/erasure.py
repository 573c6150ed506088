"""Erasure of a customer's personal data, asked for by the customer or by the retention rule for churned customers.

What identifies a person goes: email (a unique placeholder that can never receive mail), organization, GitHub login,
the API key, every free text about them (onboarding notes, notes and tasks, feedback comments, an override's reason),
the emails sent to them (recipient, subject, bodies) and the payloads of their events, and those values in earlier
audit rows. What counts stays, anonymous: engagement, health snapshots, NPS and CSAT scores, stages and bands, and
the dates of everything, so the dashboard's figures do not change. The customer's row stays too: it is what those
figures hang on.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from markupsafe import escape
from sqlalchemy import String, cast, func, literal, or_, select, update

from .. import audit, batches, clock
from ..extensions import db
from ..models import (
    PUBLIC_ID_OFFSET, Assessment, AuditLog, Customer, EmailNotification, Event, Feedback, Intervention, Onboarding,
    format_id,
)
from ..validation import ValidationError

ERASED = "(erased)"
# Audit fields whose values are free text or identify the customer, whatever they hold.
PERSONAL_FIELDS = {"email", "organization", "github_username", "notes", "title", "body", "comment", "feature_request",
                   "bug_report", "override_reason", "recipient", "subject"}


def placeholder_email(customer: Customer) -> str:
    # The .invalid top-level domain is reserved never to exist (RFC 2606): nothing can be delivered to it.
    return f"erased-{customer.public_id}@invalid"


def erase(customer: Customer, actor: str, user_id: int | None = None, reason: str = "") -> None:
    """Erase the customer's personal data in the caller's transaction (the caller commits) and audit who did it,
    with no erased value in the audit row. Raises ValidationError when the customer is already erased."""
    if customer.erased_at is not None:
        raise ValidationError(f"{customer.public_id} was already erased on {customer.erased_at:%Y-%m-%d}")
    known = personal_values(customer)
    now = clock.now()
    email_ids = scrub_emails(customer)
    event_ids = scrub_events(customer)
    db.session.execute(update(Onboarding).where(Onboarding.customer_id == customer.id).values(notes=""))
    db.session.execute(update(Intervention).where(Intervention.customer_id == customer.id)
                       .values(title=ERASED, body=""))
    db.session.execute(update(Feedback).where(Feedback.customer_id == customer.id)
                       .values(comment="", feature_request="", bug_report=""))
    db.session.execute(update(Assessment).where(Assessment.customer_id == customer.id, Assessment.override_reason != "")
                       .values(override_reason=ERASED))
    customer.email, customer.organization = placeholder_email(customer), f"Erased customer {customer.public_id}"
    customer.github_username, customer.api_key_hash = None, None
    customer.unsubscribed_at = customer.unsubscribed_at or now  # no campaign queues mail for it any more
    customer.erased_at = now
    db.session.flush()
    scrub_audit(customer, known, email_ids, event_ids)
    audit.record(actor, "customers", customer.public_id, {"erased": (None, reason or "personal data erased")}, user_id)


def personal_values(customer: Customer) -> list[str]:
    """The customer's identifying strings, to find them again in audit rows whatever field holds them."""
    values = [customer.email, customer.organization, customer.github_username]
    return [value for value in values if value and len(value) >= 3]


def scrub_emails(customer: Customer) -> list[int]:
    """Emails to the customer lose their recipient, subject, bodies and template values; queued ones never go."""
    to_them = or_(EmailNotification.customer_id == customer.id,
                  func.lower(EmailNotification.recipient) == customer.email.lower())
    redact_team_emails(customer)
    ids = list(db.session.scalars(select(EmailNotification.id).where(to_them)))
    if ids:
        theirs = EmailNotification.id.in_(ids)
        db.session.execute(update(EmailNotification).where(theirs).values(
            recipient=placeholder_email(customer), subject="", body_text="", body_html="", payload={}, last_error=""))
        db.session.execute(update(EmailNotification).where(theirs, EmailNotification.status == "queued").values(
            status="failed", last_error="customer erased", next_attempt_at=None, claim_token=None, claimed_until=None))
    return ids


def redact(value: Any, pattern: re.Pattern) -> Any:
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [redact(item, pattern) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, pattern) for key, item in value.items()}
    return value


def redact_team_emails(customer: Customer) -> None:
    """Emails to the team (the weekly digest) that name the customer keep their text with its names blotted out."""
    known = personal_values(customer)
    if not known:
        return
    # Longest first, and also as HTML bodies hold them (O'Brien &amp; Co).
    forms = sorted({*known, *(str(escape(value)) for value in known)}, key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(value)}(?!\w)" for value in forms), re.IGNORECASE)
    text = func.lower(EmailNotification.subject + EmailNotification.body_text + cast(EmailNotification.payload, String))
    naming = or_(*(text.contains(value.lower(), autoescape=True) for value in known))
    for email in db.session.scalars(select(EmailNotification).where(EmailNotification.customer_id.is_(None), naming)):
        email.subject, email.body_text = redact(email.subject, pattern), redact(email.body_text, pattern)
        email.body_html, email.payload = redact(email.body_html, pattern), redact(email.payload, pattern)


def scrub_events(customer: Customer) -> list[int]:
    """The customer's events, and unmatched ones that name its email or login, keep their type and time only."""
    payload = func.lower(cast(Event.payload, String))
    naming = [payload.contains(value.lower(), autoescape=True)
              for value in (customer.email, customer.github_username) if value]
    ids = list(db.session.scalars(select(Event.id).where(or_(Event.customer_id == customer.id,
                                                              Event.customer_id.is_(None) & or_(*naming)))))
    if ids:
        db.session.execute(update(Event).where(Event.id.in_(ids)).values(payload={}, detail=""))
    return ids


def scrub_audit(customer: Customer, known: list[str], email_ids: list[int], event_ids: list[int]) -> None:
    """Earlier audit rows of the customer's records keep who changed what and when, not the erased values."""
    prefix = f"{customer.public_id}/"
    own = or_(
        (AuditLog.table_name.in_(("customers", "assessments")) & (AuditLog.record_id == customer.public_id)),
        (AuditLog.table_name == "onboarding") & (AuditLog.record_id == format_id(Onboarding.PREFIX, customer.id)),
        AuditLog.record_id.startswith(prefix, autoescape=True),
        (AuditLog.table_name == "email_notifications") & AuditLog.record_id.in_([str(key) for key in email_ids]),
        (AuditLog.table_name == "events") & AuditLog.record_id.in_([str(key) for key in event_ids]),
    )
    lowered = [value.lower() for value in known]
    for row in db.session.scalars(select(AuditLog).where(own)):
        for column in ("old_value", "new_value"):
            value = getattr(row, column)
            if value and (row.field in PERSONAL_FIELDS or any(text in value.lower() for text in lowered)):
                setattr(row, column, ERASED)


def churned_since(customer_ids: list[int] | None = None) -> dict[int, dt.datetime]:
    """When each churned, not yet erased customer churned: its last audited change of status to churned, or its
    creation when it was created churned (an import). Each customer's change is probed among its own audit rows
    (the (table_name, record_id) index), not grouped over every status change ever audited."""
    public_id = literal(Customer.PREFIX, String) + cast(Customer.id + PUBLIC_ID_OFFSET, String)
    changed = (select(func.max(AuditLog.created_at))
               .where(AuditLog.table_name == "customers", AuditLog.record_id == public_id, AuditLog.field == "status",
                      AuditLog.new_value == "churned").scalar_subquery())
    statement = (select(Customer.id, Customer.created_at, changed.label("at"))
                 .where(Customer.status == "churned", Customer.erased_at.is_(None)))
    if customer_ids is not None:
        statement = statement.where(Customer.id.in_(customer_ids))
    rows = db.session.execute(statement)
    return {row.id: row.at or row.created_at for row in rows}


def erase_churned(days: int, actor: str, now: dt.datetime | None = None) -> int:
    """The retention rule: erase every customer churned more than `days` days ago; 0 turns it off.

    BATCH customers at a time, each batch committed: an erased customer is left out of the next run, so a run that
    stops half-way leaves whole batches erased and the next run erases the rest."""
    if days <= 0:
        return 0
    limit = (now or clock.now()) - dt.timedelta(days=days)
    due = sorted(key for key, since in churned_since().items() if since <= limit)
    for start in range(0, len(due), batches.BATCH):
        chosen = select(Customer).where(Customer.id.in_(due[start:start + batches.BATCH])).order_by(Customer.id)
        for customer in db.session.scalars(chosen).all():
            erase(customer, actor, reason=f"personal data erased: churned more than {days} days ago")
        db.session.commit()
    return len(due)
