"""Applying an inbound event: the raw event and all its effects in one transaction.

The unique (source, delivery_id) constraint decides what is a duplicate, so two workers receiving
the same delivery at once apply it once: the second insert waits for the first and then inserts nothing.
"""
from __future__ import annotations

import functools
import hmac
import uuid
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from sqlalchemy import JSON, Text, bindparam, cast, func, literal_column, null, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from .. import clock, validation
from ..health import settings, snapshots
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


class Handled(NamedTuple):
    """What handle() made of a stored event: its outcome, its customer, and whether that customer's health may
    have moved (then it is recalculated)."""

    outcome: str
    customer_id: int | None
    moved: bool = True


RETRY_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock: the sender may retry


@dataclass(frozen=True)
class Stored:
    """An event just inserted: its id, the customer stored with it and, for a GitHub delivery, whether that
    customer had already done the step the delivery ticks (None when nobody said)."""

    id: int
    customer_id: int | None
    step_done: bool | None = None
    settings: tuple = ()  # a GitHub delivery's: the settings' fingerprint as the insert found them


def receive(store: Callable[[], Stored | None], handle: Callable[[Stored], Handled],
            known_settings: Callable[[], settings.Current] | None = None) -> Receipt:
    """Store the event with store() (None: a replay, which inserted nothing), let handle() apply it and name
    (outcome, customer id, whether the customer's health may have moved), recalculate that customer's health
    when it may have, commit. The customer stored with the event is
    nearly always the one handle() names, so the usual delivery costs no UPDATE of it; the health and portal
    settings are read here unless the caller has them (known_settings(), called once the event is stored)."""
    try:
        event = store()
        if event is None:
            db.session.commit()  # nothing was written; COMMIT keeps psycopg's prepared statements, ROLLBACK drops them
            return Receipt("duplicate")
        # Read before handle() locks the customer's rows, so that concurrent deliveries for them wait less.
        known = known_settings() if known_settings else None
        weights = known.health if known else snapshots.current_settings()
        outcome, customer_id, moved = handle(event)
        if (outcome, customer_id) != ("processed", event.customer_id):
            db.session.execute(update(Event).where(Event.id == event.id).values(outcome=outcome, customer_id=customer_id)
                               .execution_options(synchronize_session=False))
        if outcome == "processed" and customer_id is not None and moved:
            snapshots.recalculate([customer_id], settings=weights, portal_settings=known.portal if known else None,
                                  moving=True)
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
          counts: dict | None = None, day=None, step_done: bool | None = None) -> bool:
    """Tick the step and add the counts; whether the customer's health may have moved (see
    snapshots.moves_snapshot). step_done: whether the customer had done the step when the event was stored, so
    that a delivery whose step is ticked (nearly all of them) loads no Customer object at all."""
    ticked = bool(step) and not step_done
    if ticked:
        customer = db.session.get(Customer, customer_id)
        # Locked, then read again: of two first deliveries arriving together, the second waits here and then
        # finds the step ticked, so it is ticked (and audited) once, with the first one's time.
        db.session.execute(select(Onboarding).where(Onboarding.customer_id == customer_id).with_for_update()
                           .execution_options(populate_existing=True))
        customers.set_step(customer, step, True, actor, when=when)
    if not counts:  # nothing counted: what else the event says (an uninstall, say) may move the health
        return True
    # Recorded by the stored event (source, delivery id, payload), so not in the audit log too.
    after = customers.add_counts(customer_id, counts, actor, day, audited=False)
    return ticked or snapshots.moves_snapshot(counts, after)


LOGIN_PARAMETERS = [f"login{number}" for number in range(1, len(github.LOGIN_PATHS) + 1)]


@functools.cache
def github_event_statement(dialect_name: str, step: str | None):
    """new_event_statement storing the customer that :login1, else :login2, else :login3 names (each a lookup in
    the unique index of lower-cased logins), and returning whether that customer has done `step` and the settings'
    fingerprint: one statement where a lookup of the customer and a read of the settings before the insert each
    cost a round trip to the database on every delivery. Built once per step."""
    events, customers, onboarding = Event.__table__, Customer.__table__, Onboarding.__table__
    login = func.lower(customers.c.github_username)
    named = [select(customers.c.id).where(login == bindparam(name)).scalar_subquery() for name in LOGIN_PARAMETERS]
    done = null()
    if step:  # the stored row's column, named in full: SQLite writes RETURNING's own columns unqualified
        stored_customer = literal_column(f"{events.name}.{events.c.customer_id.name}")
        done = select(onboarding.c[step]).where(onboarding.c.customer_id == stored_customer).scalar_subquery()
    return (new_event_statement(dialect_name).values(customer_id=func.coalesce(*named))
            .returning(events.c.customer_id, done.label("step_done"), *settings.fingerprint_columns()))


def insert_github_event(values: dict, logins: tuple[str, ...], step: str | None, raw: bytes | None) -> Stored | None:
    """Insert a GitHub delivery with the customer its logins name, first one first (see github_event_statement)."""
    named = logins or ("",)  # no login: an empty one, which names nobody
    padded = (named + named[-1:] * len(LOGIN_PARAMETERS))[:len(LOGIN_PARAMETERS)]
    stored = {**values, "payload": payloads.stored_text(values["payload"], raw), **dict(zip(LOGIN_PARAMETERS, padded))}
    row = db.session.execute(github_event_statement(dialect(), step), stored).first()
    if row is None:
        return None
    return Stored(row.id, row.customer_id, row.step_done, settings.fingerprint_of(row))


def customer_by_email(email: str) -> Customer | None:
    return db.session.scalars(select(Customer).where(func.lower(Customer.email) == email.lower())).first()


def customer_by_key(api_key: str) -> Customer | None:
    digest = signatures.key_hash(api_key)
    customer = db.session.scalars(select(Customer).where(Customer.api_key_hash == digest)).first()
    if customer is None or not hmac.compare_digest(customer.api_key_hash, digest):
        return None
    return customer


def receive_github(delivery_id: str, event_name: str, payload: dict, raw: bytes | None = None) -> Receipt:
    """The delivery's effect comes from the settings this process last read; the insert that stores the delivery
    returns their fingerprint, and only when it differs (a setting changed since) are they read again and the
    effect worked out anew."""
    current = settings.remembered()
    effect = github.effect_of(event_name, payload, current.portal)
    values = {"source": "github", "delivery_id": delivery_id, "event_type": github.event_type(event_name, payload),
              "payload": payload}

    def store() -> Stored | None:
        nonlocal current, effect
        event = insert_github_event(values, effect.logins, effect.step, raw)
        if event is None or event.settings == current.fingerprint:
            return event
        current, step = settings.read(), effect.step
        effect = github.effect_of(event_name, payload, current.portal)
        return event if effect.step == step else replace(event, step_done=None)

    def handle(event: Stored) -> Handled:
        if effect.kind in ("ping", "ignored"):
            return Handled("ignored", event.customer_id)
        if event.customer_id is None:
            return Handled("unmatched", None)
        moved = apply(event.customer_id, "github", effect.step, effect.when, dict(effect.counts), effect.day,
                      event.step_done)
        return Handled("processed", event.customer_id, moved)

    return receive(store, handle, lambda: current)


def receive_track(customer: Customer, request: TrackEvent, payload: dict, raw: bytes | None = None) -> Receipt:
    def handle(_event: Stored) -> Handled:
        return Handled("processed", customer.id, apply(customer.id, "action", request.step, counts=dict(request.counts)))

    delivery_id = request.delivery_id or f"generated-{uuid.uuid4()}"
    values = {"source": "action", "delivery_id": delivery_id, "event_type": request.event_type, "payload": payload,
              "customer_id": customer.id}
    return receive(lambda: insert_new_event(values, raw), handle)


def signup(request: LandingEvent) -> Customer:
    """The customer with the signup's email, created when there is none."""
    existing = customer_by_email(request.email)
    if existing is not None:
        return existing
    return customers.add_customer(request.fields, "landing", signup_date=clock.local_date(request.occurred_at))


def receive_landing(delivery_id: str, request: LandingEvent, payload: dict, raw: bytes | None = None) -> Receipt:
    validation.email(request.email)  # before it reaches a query

    def handle(_event: Stored) -> Handled:
        if request.event == "signup":
            return Handled("processed", signup(request).id)
        customer = customer_by_email(request.email)
        if customer is None:
            return Handled("unmatched", None)
        apply(customer.id, "landing", "account_created", request.occurred_at)
        return Handled("processed", customer.id)

    values = {"source": "landing", "delivery_id": delivery_id, "event_type": request.event, "payload": payload}
    return receive(lambda: insert_new_event(values, raw), handle)


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


def insert_new_event(values: dict, raw: bytes | None = None) -> Stored | None:
    """Insert the event unless (source, delivery_id) exists; None for a duplicate. raw: the body the payload was
    read from, stored as it is when it can be (payloads.stored_text)."""
    stored = {**values, "payload": payloads.stored_text(values["payload"], raw)}
    event_id = db.session.execute(new_event_statement(dialect()), stored).scalar()
    return Stored(event_id, values.get("customer_id")) if event_id is not None else None


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


def store_email_event(item: email_events.EmailEvent, notification: EmailNotification | None) -> Stored | None:
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
        stored = store_email_event(item, notification)
        if stored is None:
            counts["duplicate"] += 1
            continue
        counts["processed" if notification else "unmatched"] += 1
        if notification is not None and item.status:
            moves.append((notification.id, item.status, stored.id))
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
