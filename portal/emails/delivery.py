"""Delivering the outbox: claim due rows under a lease, send each once, record what happened.

A run claims a batch by writing its token and a lease on the rows (UPDATE ... WHERE id IN (SELECT ...),
the rows locked with FOR UPDATE SKIP LOCKED first on PostgreSQL) and commits; two runs therefore never
hold the same row, and the rows of a run that died are free again when its lease ends. Outcomes are
written and committed in small groups, in order.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Callable

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import selectinload

from .. import clock, health
from ..customers import service as customers
from ..extensions import db
from ..models import Customer, EmailNotification
from ..sql import dialect
from . import content, render, suppression
from .channels import Channels, SendFailed

log = logging.getLogger(__name__)
EN = EmailNotification
LEASE = dt.timedelta(minutes=5)
CLAIM_BATCH = 100
# Outcomes are committed in small groups: a commit per email would cost more than the email. A run that
# dies between a send and its commit sends at most this many again once its lease ends.
COMMIT_EVERY = 10
OUTCOMES = ("sent", "retried", "failed", "suppressed")
ACTOR = "email delivery"


def deliverable_kinds() -> tuple[str, ...]:
    """Without SMTP only ConvertKit's milestones can go out; with neither, everything stays queued."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        return content.KINDS
    return ("milestone",) if config.get("CONVERTKIT_API_SECRET") else ()


def due(now: dt.datetime, kinds: tuple[str, ...]) -> list:
    return [EN.status == "queued", EN.kind.in_(kinds),
            or_(EN.next_attempt_at.is_(None), EN.next_attempt_at <= now),
            or_(EN.claimed_until.is_(None), EN.claimed_until < now)]


def claim(token: str, now: dt.datetime, kinds: tuple[str, ...], size: int) -> list[int]:
    """Write this run's token and lease on up to size due rows, and commit; returns their ids."""
    candidates = select(EN.id).where(*due(now, kinds)).order_by(EN.id).limit(size)
    if dialect() == "postgresql":
        # Lock the rows first: inside one UPDATE, PostgreSQL may rescan a LIMIT ... SKIP LOCKED subquery
        # and so take more than size rows.
        chosen = db.session.scalars(candidates.with_for_update(skip_locked=True)).all()
        where = [EN.id.in_(chosen)]
    else:  # one statement: SQLite runs one writer at a time, and the subquery once
        where = [EN.id.in_(candidates.correlate(None).scalar_subquery()), *due(now, kinds)]
    statement = (update(EN).where(*where).values(claim_token=token, claimed_until=now + LEASE)
                 .returning(EN.id).execution_options(synchronize_session=False))
    ids = sorted(db.session.scalars(statement).all())
    db.session.commit()
    return ids


def deliver_due(now: dt.datetime | None = None, limit: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Send every due queued email (at most limit); returns {"sent", "retried", "failed", "suppressed"} counts."""
    now = now or clock.now()
    counts = dict.fromkeys(OUTCOMES, 0)
    kinds = deliverable_kinds()
    if not kinds:
        return counts
    total = db.session.scalar(select(func.count(EN.id)).where(*due(now, kinds)))
    total = min(total, limit) if limit is not None else total
    token, done = str(uuid.uuid4()), 0
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False  # each email commits alone; its batch's rows stay loaded
    try:
        with Channels() as channels:
            misses = 0
            while done < total and misses < 3:
                ids = claim(token, now, kinds, min(CLAIM_BATCH, total - done))
                if not ids:
                    # Another run may have taken the rows this claim chose a moment before: look again while any is due.
                    misses = misses + 1 if db.session.scalar(select(EN.id).where(*due(now, kinds)).limit(1)) else 3
                    continue
                misses = 0
                for outcome in deliver_batch(ids, token, channels, now):
                    counts[outcome] += 1
                    done += 1
                    if progress is not None:
                        progress(done, total)
    except BaseException:
        db.session.rollback()  # the claimed rows stay leased and go out in a later run
        raise
    finally:
        session.expire_on_commit = keep
        session.expire_all()  # as a commit would have: the rows were updated behind the ORM's back
    return counts


def deliver_batch(ids: list[int], token: str, channels: Channels, now: dt.datetime):
    """Deliver a claimed batch, recording the outcomes in order, a group at a time."""
    started = time.monotonic()
    # populate_existing: the claim was a bulk UPDATE, and rows of earlier runs may sit in the session.
    rows = db.session.scalars(select(EN).where(EN.id.in_(ids), EN.claim_token == token).order_by(EN.id)
                              .execution_options(populate_existing=True)).all()
    customer_ids = {row.customer_id for row in rows if row.customer_id is not None}
    people = {customer.id: customer for customer in db.session.scalars(
        select(Customer).options(selectinload(Customer.onboarding)).where(Customer.id.in_(customer_ids))
        .execution_options(populate_existing=True))}
    suppressed = suppression.reasons(customer_ids)
    done: list[tuple[EN, str, dict]] = []
    for row in rows:
        if time.monotonic() - started > LEASE.total_seconds() * 0.8:
            break  # the lease is nearly over: what is left is another run's to take
        done.append((row, *deliver_one(row, people.get(row.customer_id), suppressed.get(row.customer_id),
                                       channels, now)))
        if len(done) >= COMMIT_EVERY:
            yield from record(done, token)
    yield from record(done, token)


RECORDED = ("status", "channel", "provider_message_id", "sent_at", "attempts", "last_error", "next_attempt_at",
            "subject", "body_text", "body_html")
TABLE = EN.__table__


def record(done: list[tuple[EN, str, dict]], token: str):
    """Write a group of outcomes with one executemany UPDATE (the rows are not read again) and commit."""
    if done:
        statement = (update(TABLE).where(TABLE.c.id == bindparam("row_id"), TABLE.c.claim_token == token)
                     .values(claim_token=None, claimed_until=None, **{name: bindparam(name) for name in RECORDED}))
        db.session.execute(statement, [{**{name: getattr(row, name) for name in RECORDED}, **values, "row_id": row.id}
                                       for row, _, values in done])
    db.session.commit()
    yield from (outcome for _, outcome, _ in done)
    done.clear()


def deliver_one(row: EN, customer: Customer | None, suppressed: str | None, channels: Channels,
                now: dt.datetime) -> tuple[str, dict]:
    """Send one email; returns its outcome and the columns to record."""
    if suppressed:
        return "suppressed", {"status": "failed", "last_error": f"suppressed: {suppressed}"}
    notes = []
    if row.kind == "milestone" and channels.convertkit is not None:
        try:
            return sent(row, customer, "convertkit", channels.tag(row.payload["milestone"], row.recipient), now, "")
        except SendFailed as error:
            notes.append(f"{error}; falling back to SMTP")
    rendered = {}
    try:
        message = render_row(row, customer)
        rendered = {"subject": message.subject[:200], "body_text": message.text, "body_html": message.html}
        outgoing = channels.prepare(row.recipient, message)
        channels.send(outgoing)
    except SendFailed as error:
        outcome, values = failed_attempt(row, now, "; ".join([*notes, str(error)]))
        return outcome, {**values, **rendered}
    outcome, values = sent(row, customer, "smtp", outgoing.message_id, now, "; ".join(notes))
    return outcome, {**values, **rendered}


def render_row(row: EN, customer: Customer | None) -> render.Rendered:
    try:
        return render.render(row, customer)
    except Exception as error:  # a template or payload fault fails this email, not the whole run
        log.exception("email %s could not be rendered", row.id)
        raise SendFailed(f"rendering failed: {type(error).__name__}: {error}") from None


def sent(row: EN, customer: Customer | None, channel: str, provider_id: str, now: dt.datetime,
         note: str) -> tuple[str, dict]:
    if row.kind == "milestone" and row.payload.get("milestone") == "welcome" and customer is not None:
        # SPEC section 7: the step is ticked when the welcome email has actually gone out.
        if customers.set_step(customer, content.WELCOME_STEP, True, ACTOR, when=now):
            health.recalculate([customer.id])
    return "sent", {"status": "sent", "channel": channel, "provider_message_id": provider_id, "sent_at": now,
                    "attempts": row.attempts + 1, "last_error": note, "next_attempt_at": None}


def failed_attempt(row: EN, now: dt.datetime, error: str) -> tuple[str, dict]:
    attempts = row.attempts + 1
    if attempts >= content.MAX_ATTEMPTS:
        return "failed", {"status": "failed", "attempts": attempts, "last_error": error, "next_attempt_at": None}
    return "retried", {"attempts": attempts, "last_error": error, "next_attempt_at": now + content.retry_delay(attempts)}
