"""Changes to customers, onboarding steps and engagement, shared by the CLI, the portal and imports.

Each function validates first and raises ValidationError before touching the database; the caller
commits, so a failure changes nothing.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Mapping

from sqlalchemy import Row, func, select

from .. import audit, clock, validation
from ..health import metrics
from ..extensions import db
from ..emails import content as email_content, outbox
from ..integrations.signatures import key_hash
from ..models import CUSTOMER_STATUSES, Customer, Engagement, Onboarding, User, format_id
from ..sql import dialect, upsert
from ..validation import ValidationError


def get_customer(public_id: str) -> Customer:
    key = Customer.key_of(public_id)
    customer = db.session.get(Customer, key) if key is not None else None
    if customer is None:
        raise ValidationError(f"unknown customer {public_id!r}", "customer_id")
    return customer


def issue_api_key(customer: Customer, actor: str, user_id: int | None = None) -> str:
    """A new metrics-API key for the customer, replacing any old one; only its hash is kept, so show it once."""
    key = f"ck_{secrets.token_urlsafe(32)}"
    replaced = "replaced" if customer.api_key_hash else None
    customer.api_key_hash = key_hash(key)
    audit.record(actor, "customers", customer.public_id, {"api_key": (replaced, "issued")}, user_id)
    return key


def check_unique(email: str, github_username: str, except_id: int | None = None) -> None:
    """Clear messages for the duplicates the database's unique indexes would refuse anyway."""
    clash = select(Customer).where(Customer.id != except_id) if except_id else select(Customer)
    if db.session.scalars(clash.where(func.lower(Customer.email) == email.lower())).first():
        raise ValidationError(f"a customer with email {email} already exists", "email")
    other = db.session.scalars(clash.where(func.lower(Customer.github_username) == github_username.lower())).first()
    if other:
        raise ValidationError(
            f"GitHub login {github_username} is already used by {other.public_id} ({other.github_username})",
            "github_username",
        )


CUSTOMER_FIELDS = {
    "email": validation.email,
    "organization": lambda value: validation.text(value, "organization", 200, required=True),
    "github_username": validation.github_login,
    "cohort": lambda value: validation.text(value, "cohort", 50),
    "industry": lambda value: validation.text(value, "industry", 100),
    "team_size": lambda value: validation.integer(value, "team_size", minimum=1, maximum=validation.MAX_TEAM_SIZE),
}
OPTIONAL = {"cohort": "", "industry": "", "team_size": "1"}


def clean_customer(fields: Mapping[str, str], problems: list[ValidationError] | None = None) -> dict:
    """Typed customer fields from text. Raises on the first bad one, or, given a list, collects them all."""
    values = {}
    for field, parse in CUSTOMER_FIELDS.items():
        try:
            values[field] = parse(fields.get(field, OPTIONAL.get(field, "")))
        except ValidationError as problem:
            if problems is None:
                raise
            problem.field = problem.field or field
            problems.append(problem)
    return values


def add_customer(fields: Mapping[str, str], actor: str, signup_date: dt.date | None = None,
                 status: str = "active", user_id: int | None = None) -> Customer:
    values = clean_customer(fields)
    status = validation.choice(status, CUSTOMER_STATUSES, "status")
    check_unique(values["email"], values["github_username"])
    customer = Customer(**values, status=status, signup_date=signup_date or clock.today())
    db.session.add(customer)
    db.session.flush()
    # Onboarding is one row per customer and shares its number: c1005 has o1005.
    customer.onboarding = Onboarding(id=customer.id)
    db.session.flush()
    audit.created(actor, "customers", customer.public_id, user_id)
    outbox.queue_welcome(customer)
    return customer


def set_step(customer: Customer, step: str, value: bool, actor: str,
             when: dt.datetime | None = None, user_id: int | None = None) -> bool:
    """Tick or untick one onboarding step; returns whether anything changed."""
    if step not in metrics.STEPS:
        raise ValidationError(f"unknown step {step!r}: expected one of {', '.join(metrics.STEPS)}", "step")
    onboarding = customer.onboarding
    if getattr(onboarding, step) == value:
        return False
    when = when or clock.now()
    changes = audit.apply_changes(onboarding, {step: value, f"{step}_at": when if value else None})
    changes.update(refresh_completion(onboarding, customer.signup_date, clock.local_date(when)))
    audit.record(actor, "onboarding", onboarding.public_id, changes, user_id)
    queue_milestones(customer, changes)
    return True


def queue_milestones(customer: Customer, changes: dict) -> None:
    """The milestone emails of the steps this change ticked, in the change's own transaction."""
    for step, milestone in email_content.STEP_MILESTONES.items():
        if changes.get(step, (None, False))[1] is True:
            outbox.queue_milestone(customer, milestone)
    if "completed_date" in changes and changes["completed_date"][1] is not None:
        outbox.queue_milestone(customer, "onboarding_completed")


def refresh_completion(onboarding: Onboarding, signup_date: dt.date, on: dt.date) -> dict:
    """completed_date and days_to_complete are set once when all five steps are true, cleared otherwise."""
    if not metrics.is_complete(onboarding.steps()):
        return audit.apply_changes(onboarding, {"completed_date": None, "days_to_complete": None})
    if onboarding.completed_date is not None:
        return {}
    return audit.apply_changes(
        onboarding, {"completed_date": on, "days_to_complete": metrics.days_to_complete(signup_date, on)}
    )


def clean_counts(values: Mapping[str, str | int]) -> dict[str, int]:
    return {count: validation.integer(values[count], count) for count in Engagement.COUNTS}


def record_engagement(customer: Customer, counts: Mapping[str, int], actor: str,
                      day: dt.date | None = None, user_id: int | None = None) -> Engagement:
    """Add counts to the customer's row for the day (see add_counts) and return the row; a ValidationError when a
    total would pass what its column holds."""
    day = day or clock.today()
    before = db.session.execute(select(*(getattr(Engagement, count) for count in Engagement.COUNTS))
                                .filter_by(customer_id=customer.id, date=day)).first()
    for count, total in zip(Engagement.COUNTS, before or ()):
        if total + counts.get(count, 0) > validation.LARGEST_KEY:
            raise validation.ValidationError(
                f"{count} would pass {validation.LARGEST_KEY:,} for {customer.public_id} on {day}", count)
    row = add_counts(customer.id, counts, actor, day, user_id)
    return db.session.get(Engagement, row.id, populate_existing=True)


def add_counts(customer_id: int, counts: Mapping[str, int], actor: str,
               day: dt.date | None = None, user_id: int | None = None, audited: bool = True) -> Row:
    """Add counts to the customer's row for the day, atomically even when two writers race; the row's id and
    counts as this write left them.

    Core statements, not ORM objects: every webhook delivery runs this (benchmarks/bench_webhooks.py).
    audited=False leaves the audit log out, for counts whose stored event already records them.
    """
    day = day or clock.today()
    counts = {count: counts.get(count, 0) for count in Engagement.COUNTS}  # a count left out adds nothing
    key = {"customer_id": customer_id, "date": day}
    row = {**key, **counts}
    returning = ("id", *Engagement.COUNTS)
    if not audited:
        return upsert(Engagement.__table__, [row], key, add=Engagement.COUNTS, returning=returning).one()
    # PostgreSQL says whether the upsert created the row; SQLite is asked beforehand (in-process, so cheap).
    existed = None if dialect() == "postgresql" else db.session.execute(select(Engagement.id).filter_by(**key)).first()
    after = upsert(Engagement.__table__, [row], key, add=Engagement.COUNTS, returning=returning).one()
    created = after.inserted if after.inserted is not None else existed is None
    # The totals before are the returned ones less what was added: exact even when another writer came first.
    changes = {count: (getattr(after, count) - counts[count], getattr(after, count))
               for count in Engagement.COUNTS if counts[count]}
    public_id = format_id(Engagement.PREFIX, after.id)
    if created:
        audit.created(actor, "engagement", public_id, user_id)
    audit.record(actor, "engagement", public_id, changes, user_id)
    return after


# Fields the portal edits in place, and the column each one sets.
EDITABLE = {"organization": "organization", "cohort": "cohort", "industry": "industry", "team_size": "team_size",
            "owner": "owner_id", "status": "status"}


def parse_field(field: str, text: str):
    if field == "status":
        return validation.choice(text, CUSTOMER_STATUSES, "status")
    if field == "owner":
        if not text.strip():
            return None
        key = validation.database_key(text)
        user = db.session.get(User, key) if key is not None else None
        if user is None or not user.active:
            raise ValidationError("choose an active team member", "owner")
        return user.id
    return CUSTOMER_FIELDS[field](text)


def update_fields(customer: Customer, values: Mapping[str, str], actor: str, user_id: int | None = None) -> dict:
    """Change some editable fields from text; validates them all before changing any."""
    unknown = set(values) - EDITABLE.keys()
    if unknown:
        raise ValidationError(f"{', '.join(sorted(unknown))} cannot be edited here")
    parsed = {EDITABLE[field]: parse_field(field, text) for field, text in values.items()}
    changes = audit.apply_changes(customer, parsed)
    if "owner_id" in changes:
        old, new = changes.pop("owner_id")
        changes["owner"] = tuple(db.session.get(User, key).name if key else None for key in (old, new))
    audit.record(actor, "customers", customer.public_id, changes, user_id)
    return changes


NOTES_LENGTH = 10_000  # an onboarding's notes, typed on the customer page or imported


def set_details(customer: Customer, blocker_type: str, notes: str, actor: str, user_id: int | None = None) -> dict:
    values = {"blocker_type": validation.choice(blocker_type or "none", metrics.BLOCKER_TYPES, "blocker_type"),
              "notes": validation.text(notes, "notes", NOTES_LENGTH)}
    changes = audit.apply_changes(customer.onboarding, values)
    audit.record(actor, "onboarding", customer.onboarding.public_id, changes, user_id)
    return changes
