"""Applying an inbound event: the raw event and all its effects in one transaction.

The unique (source, delivery_id) constraint decides what is a duplicate, so two workers receiving
the same delivery at once apply it once: the second insert waits for the first and then inserts nothing.
"""
from __future__ import annotations

import functools
import hmac
import uuid
from dataclasses import dataclass
from typing import Callable, Mapping

from sqlalchemy import JSON, Select, Text, bindparam, cast, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from .. import clock, health, metrics, settings, validation
from ..customers import service as customers
from ..extensions import db
from ..models import Customer, EmailNotification, Event, Onboarding, format_id
from ..sql import dialect, insert_for
from . import email_events, github, landing, payloads, signatures
from .landing import LandingEvent
from .track import TrackEvent


class Conflict(Exception):
    """Another request changed the same rows at the same moment; the sender should retry."""


@dataclass(frozen=True)
class Receipt:
    status: str  # processed, unmatched, ignored or duplicate
    customer_id: str | None = None


RETRY_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock: the sender may retry


def receive(source: str, delivery_id: str, event_type: str, payload: dict,
            handle: Callable[[], tuple[str, int | None]], known: int | None = None, health_settings=None,
            raw: bytes | None = None) -> Receipt:
    """Store the event unless it is a replay, let handle() apply it and name (outcome, customer id),
    recalculate that customer's health, commit. The customer known beforehand (its id) is stored with the
    event, so the usual delivery costs no UPDATE of it; so are the health settings when the caller read them.
    raw: the body the payload was read from, stored as it is when it can be (payloads.stored_text)."""
    try:
        event_id = insert_new_event({"source": source, "delivery_id": delivery_id, "event_type": event_type,
                                     "payload": payload, "customer_id": known}, raw)
        if event_id is None:
            db.session.commit()  # nothing was written; COMMIT keeps psycopg's prepared statements, ROLLBACK drops them
            return Receipt("duplicate")
        # Read before handle() locks the customer's rows, so that concurrent deliveries for them wait less.
        if health_settings is None:
            health_settings = health.current_settings()
        outcome, customer_id = handle()
        if (outcome, customer_id) != ("processed", known):
            db.session.execute(update(Event).where(Event.id == event_id).values(outcome=outcome, customer_id=customer_id)
                               .execution_options(synchronize_session=False))
        if outcome == "processed" and customer_id is not None:
            health.recalculate([customer_id], settings=health_settings)
        db.session.commit()
    except (IntegrityError, DBAPIError) as error:
        db.session.rollback()
        if isinstance(error, IntegrityError) or getattr(error.orig, "sqlstate", None) in RETRY_SQLSTATES:
            raise Conflict() from None
        raise
    except BaseException:
        db.session.rollback()
        raise
    return Receipt(outcome, format_id(Customer.PREFIX, customer_id) if customer_id else None)


def apply(customer_id: int, actor: str, step: str | None = None, when=None,
          counts: dict | None = None, day=None, steps_done: Mapping[str, bool] | None = None) -> None:
    """Tick the step and add the counts. steps_done: the customer's steps as already read, so that a delivery
    whose step is ticked (nearly all of them) loads no Customer object at all."""
    if step and not (steps_done or {}).get(step):
        customer = db.session.get(Customer, customer_id)
        # Locked, then read again: of two first deliveries arriving together, the second waits here and then
        # finds the step ticked, so it is ticked (and audited) once, with the first one's time.
        db.session.execute(select(Onboarding).where(Onboarding.customer_id == customer_id).with_for_update()
                           .execution_options(populate_existing=True))
        customers.set_step(customer, step, True, actor, when=when)
    if counts:  # recorded by the stored event (source, delivery id, payload), so not in the audit log too
        customers.add_counts(customer_id, counts, actor, day, audited=False)


@dataclass(frozen=True)
class Match:
    """The customer a GitHub delivery names: its id and which onboarding steps it has done."""

    id: int
    steps_done: Mapping[str, bool]


@functools.cache
def login_lookup() -> Select:
    """The customers whose lower-cased login is :login1, :login2 or :login3, with their steps. Built once, on the
    tables' columns with three plain parameters (a payload names at most three logins): building, expanding and
    ORM-loading a statement cost more than running it, and every delivery runs this one."""
    customers, onboarding = Customer.__table__, Onboarding.__table__
    login = func.lower(customers.c.github_username)
    return (select(customers.c.id, login.label("login"), *(onboarding.c[step] for step in metrics.STEPS))
            .outerjoin(onboarding, onboarding.c.customer_id == customers.c.id)
            .where(login.in_([bindparam(name) for name in LOGIN_PARAMETERS])))


LOGIN_PARAMETERS = [f"login{number}" for number in range(1, len(github.LOGIN_PATHS) + 1)]


def customer_by_login(logins: tuple[str, ...]) -> Match | None:
    """The customer of the first login that names one."""
    if not logins:
        return None
    padded = (logins + logins[-1:] * len(LOGIN_PARAMETERS))[:len(LOGIN_PARAMETERS)]
    found = {row.login: row for row in db.session.execute(login_lookup(), dict(zip(LOGIN_PARAMETERS, padded)))}
    row = next((found[login] for login in logins if login in found), None)
    return Match(row.id, health.steps_of(row)) if row else None


def customer_by_email(email: str) -> Customer | None:
    return db.session.scalars(select(Customer).where(func.lower(Customer.email) == email.lower())).first()


def customer_by_key(api_key: str) -> Customer | None:
    digest = signatures.key_hash(api_key)
    customer = db.session.scalars(select(Customer).where(Customer.api_key_hash == digest)).first()
    if customer is None or not hmac.compare_digest(customer.api_key_hash, digest):
        return None
    return customer


def receive_github(delivery_id: str, event_name: str, payload: dict, raw: bytes | None = None) -> Receipt:
    portal_settings, health_settings = settings.current_with_health()
    effect = github.effect_of(event_name, payload, portal_settings)
    customer = customer_by_login(effect.logins)

    def handle() -> tuple[str, int | None]:
        if effect.kind in ("ping", "ignored"):
            return "ignored", customer.id if customer else None
        if customer is None:
            return "unmatched", None
        apply(customer.id, "github", effect.step, effect.when, dict(effect.counts), effect.day, customer.steps_done)
        return "processed", customer.id

    known = customer.id if customer else None
    return receive("github", delivery_id, github.event_type(event_name, payload), payload, handle, known,
                   health_settings, raw)


def receive_track(customer: Customer, request: TrackEvent, payload: dict, raw: bytes | None = None) -> Receipt:
    def handle() -> tuple[str, int | None]:
        apply(customer.id, "action", request.step, counts=dict(request.counts))
        return "processed", customer.id

    delivery_id = request.delivery_id or f"generated-{uuid.uuid4()}"
    return receive("action", delivery_id, request.event_type, payload, handle, customer.id, raw=raw)


def signup(request: LandingEvent) -> Customer:
    """The customer with the signup's email, created when there is none."""
    existing = customer_by_email(request.email)
    if existing is not None:
        return existing
    return customers.add_customer(request.fields, "landing", signup_date=clock.local_date(request.occurred_at))


def receive_landing(delivery_id: str, request: LandingEvent, payload: dict, raw: bytes | None = None) -> Receipt:
    validation.email(request.email)  # before it reaches a query

    def handle() -> tuple[str, int | None]:
        if request.event == "signup":
            return "processed", signup(request).id
        customer = customer_by_email(request.email)
        if customer is None:
            return "unmatched", None
        apply(customer.id, "landing", "account_created", request.occurred_at)
        return "processed", customer.id

    return receive("landing", delivery_id, request.event, payload, handle, raw=raw)


def apply_stored(event: Event, customer: Customer, actor: str) -> None:
    """Apply an already-stored event's effects to a chosen customer: an unmatched event assigned in the portal."""
    if event.source == "github":
        name = event.event_type.partition(".")[0]  # stored as "issues.labeled"
        effect = github.effect_of(name, event.payload, settings.current())
        if effect.kind == "apply":
            apply(customer.id, actor, effect.step, effect.when, dict(effect.counts), effect.day)
    elif event.source == "landing" and event.event_type == "account_created":
        apply(customer.id, actor, "account_created", landing.parse(event.payload).occurred_at)


# The email provider's event webhook: a whole array in one transaction.


def notifications_for(events: list[email_events.EmailEvent]) -> dict[str, EmailNotification]:
    """The notifications the events name, by provider message id."""
    wanted = {candidate for item in events for candidate in item.ids()}
    if not wanted:
        return {}
    found = db.session.scalars(select(EmailNotification).where(EmailNotification.provider_message_id.in_(wanted)))
    return {notification.provider_message_id: notification for notification in found}


def insert_new_event(values: dict, raw: bytes | None = None) -> int | None:
    """Insert the event unless (source, delivery_id) exists: its id, or None for a duplicate. raw: see receive()."""
    stored = {**values, "payload": payloads.stored_text(values["payload"], raw)}
    return db.session.execute(new_event_statement(dialect()), stored).scalar()


@functools.cache
def new_event_statement(dialect_name: str):
    """INSERT ... ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, its columns those of the values it is
    executed with; built once per database. The payload is bound as the JSON text stored_text() made rather than
    serialized again: SQLite keeps JSON as text, PostgreSQL is told it is json."""
    events = Event.__table__
    payload = bindparam("payload", type_=Text())
    payload = cast(payload, JSON) if dialect_name == "postgresql" else payload
    return (insert_for(events, dialect_name).values(payload=payload)
            .on_conflict_do_nothing(index_elements=["source", "delivery_id"]).returning(events.c.id))


def advance_notification(notification_id: int, status: str) -> bool:
    """Move the email to status when that is forward; one atomic UPDATE, so racing events cannot go back."""
    result = db.session.execute(
        update(EmailNotification).where(EmailNotification.id == notification_id,
                                        EmailNotification.status.in_(email_events.moves_to(status)))
        .values(status=status).execution_options(synchronize_session=False))
    return result.rowcount > 0


def store_email_event(item: email_events.EmailEvent, notification: EmailNotification | None) -> int | None:
    return insert_new_event({
        "source": "email_provider", "delivery_id": item.event_id, "event_type": item.event,
        "customer_id": notification.customer_id if notification else None, "payload": item.payload,
        "outcome": "processed" if notification else "unmatched",
        "detail": item.note if notification else f"no email with provider message id {item.message_id!r}"})


def apply_email_events(events: list[email_events.EmailEvent]) -> dict[str, int]:
    """Store every event (sorted, so concurrent batches lock in one order), then move statuses forward."""
    counts = {"processed": 0, "duplicate": 0, "unmatched": 0}
    notifications, moves = notifications_for(events), []
    for item in sorted(events, key=lambda event: event.event_id):
        notification = next((notifications[c] for c in item.ids()
                             if c in notifications), None)
        event_id = store_email_event(item, notification)
        if event_id is None:
            counts["duplicate"] += 1
            continue
        counts["processed" if notification else "unmatched"] += 1
        if notification is not None and item.status:
            moves.append((notification.id, item.status, event_id))
    for notification_id, status, event_id in sorted(moves):
        if not advance_notification(notification_id, status):
            db.session.execute(update(Event).where(Event.id == event_id).values(
                detail=f"status {status} not applied: email statuses only move forward and bounced/dropped are final"))
    return counts


def receive_email_events(events: list[email_events.EmailEvent]) -> dict[str, int]:
    """Apply the array and commit once; a deadlock or serialization failure answers Conflict (retry)."""
    try:
        counts = apply_email_events(events)
        db.session.commit()
    except DBAPIError as error:
        db.session.rollback()
        if getattr(error.orig, "sqlstate", None) in RETRY_SQLSTATES:
            raise Conflict() from None
        raise
    except BaseException:
        db.session.rollback()
        raise
    return counts
