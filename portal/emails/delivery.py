"""Delivering the outbox: claim due rows under a lease, send each once, record what happened.

A run claims a batch by writing its token and a lease on the rows (UPDATE ... WHERE id IN (SELECT ...),
the rows locked with FOR UPDATE SKIP LOCKED first on PostgreSQL) and commits; two runs therefore never
hold the same row, and the rows of a run that died are free again when its lease ends.

An email goes out at most twice across a crash. Before each handoff to SMTP or ConvertKit one statement
records the outcome of the email before and marks this one as being handed over (sending_at, the channel,
its Message-ID), committed before the handoff starts (see Recorder): when the process dies, every email
but the one in hand has its outcome recorded, and that one is marked. The next run sends it again under the
same Message-ID, which message.message_id derives from the row, so the receiver can drop the copy.
ConvertKit keeps one tag per subscriber, so tagging again changes nothing there and starts no second
sequence email.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Callable

from flask import current_app
from sqlalchemy import Connection, bindparam, case, func, or_, select, update
from sqlalchemy.orm import selectinload

from .. import clock
from ..health import snapshots
from ..customers import service as customers
from ..extensions import db
from ..models import Customer, EmailNotification
from ..sql import dialect, unsynced_autocommit
from . import content, message, render, suppression
from .channels import Channels, SendFailed

log = logging.getLogger(__name__)
EN = EmailNotification
LEASE = dt.timedelta(minutes=5)
CLAIM_BATCH = 100
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
        with Channels() as channels, unsynced_autocommit() as marks:
            misses = 0
            while done < total and misses < 3:
                ids = claim(token, now, kinds, min(CLAIM_BATCH, total - done))
                if not ids:
                    # Another run may have taken the rows this claim chose a moment before: look again while any is due.
                    misses = misses + 1 if db.session.scalar(select(EN.id).where(*due(now, kinds)).limit(1)) else 3
                    continue
                misses = 0
                for outcome in deliver_batch(ids, token, channels, marks, now):
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


def deliver_batch(ids: list[int], token: str, channels: Channels, marks: Connection, now: dt.datetime):
    """Deliver a claimed batch in order; yields each outcome once it is committed."""
    started = time.monotonic()
    # populate_existing: the claim was a bulk UPDATE, and rows of earlier runs may sit in the session.
    rows = db.session.scalars(select(EN).where(EN.id.in_(ids), EN.claim_token == token).order_by(EN.id)
                              .execution_options(populate_existing=True)).all()
    customer_ids = {row.customer_id for row in rows if row.customer_id is not None}
    people = {customer.id: customer for customer in db.session.scalars(
        select(Customer).options(selectinload(Customer.onboarding)).where(Customer.id.in_(customer_ids))
        .execution_options(populate_existing=True))}
    suppressed = suppression.reasons(customer_ids)
    recorder = Recorder(token, now, marks)
    for row in rows:
        if time.monotonic() - started > LEASE.total_seconds() * 0.8:
            break  # the lease is nearly over: what is left is another run's to take
        customer = people.get(row.customer_id)
        if not deliver_one(row, customer, suppressed.get(row.customer_id), channels, recorder, now):
            break  # the row is no longer this run's: its lease ended and another run claimed it
        yield from recorder.committed()
    recorder.finish()
    yield from recorder.committed()


RECORDED = ("status", "channel", "provider_message_id", "sent_at", "attempts", "last_error", "next_attempt_at",
            "subject", "body_text", "body_html")
CLAIM = ("claim_token", "claimed_until", "sending_at")
TABLE = EN.__table__
# Outcomes, as an executemany; rows another run has claimed since are left alone.
WRITE = (update(TABLE).where(TABLE.c.id == bindparam("row_id"), TABLE.c.claim_token == bindparam("token"))
         .values(**{name: bindparam(name) for name in (*RECORDED, *CLAIM)}))


def handoff_statement():
    """One UPDATE that records the outcome of row_id and marks mark_id as being handed over, both or neither: one
    round trip and one set of parameters, where an executemany of the two rows cost PostgreSQL a pipeline and the
    client twice the parameters. Each column takes the outcome's value on row_id and keeps its own on mark_id,
    but for the mark's channel, Message-ID and time. With nothing to record, row_id is mark_id."""
    marked = TABLE.c.id == bindparam("mark_id")
    column = TABLE.c

    def outcome_or(name: str, on_mark):
        return case((marked, on_mark), else_=bindparam(name, type_=column[name].type))

    values = {name: outcome_or(name, column[name]) for name in RECORDED}
    values.update(channel=outcome_or("channel", bindparam("mark_channel", type_=column.channel.type)),
                  provider_message_id=outcome_or("provider_message_id",
                                                 bindparam("mark_message_id", type_=column.provider_message_id.type)),
                  claim_token=case((marked, column.claim_token)), claimed_until=case((marked, column.claimed_until)),
                  sending_at=case((marked, bindparam("sending_at", type_=column.sending_at.type))))
    return (update(TABLE).where(column.id.in_([bindparam("row_id"), bindparam("mark_id")]),
                                column.claim_token == bindparam("token")).values(**values))


HANDOFF = handoff_statement()


class Recorder:
    """The outcomes of a batch, written ahead of each next handoff together with that handoff's sending mark.

    Before each handoff one UPDATE (HANDOFF) records the outcome of the email before and marks this one, on the
    run's unsynced autocommit connection: one round trip, no wait for the disk (sql.unsynced_autocommit), where a
    synced commit per email would cost more than the email (outcomes that needed no handoff, a suppressed email,
    go in an executemany just before). A
    crash of the process therefore leaves at most one email whose fate is unknown, the marked one; a crash of the
    database server may lose the last moments of marks too, and those emails go out again, still under their
    Message-IDs. The welcome step of a welcome email that went out is committed on the session just before its
    outcome (a crash in between sends the welcome again, and finds the step ticked). The batch's last outcomes go
    through the session, whose synced commit makes every mark and outcome before it durable as well.
    """

    def __init__(self, token: str, now: dt.datetime, marks: Connection):
        self.token, self.now, self.marks = token, now, marks
        self.pending: list[tuple[EN, Customer | None, str, dict]] = []
        self.done: list[str] = []

    def add(self, row: EN, customer: Customer | None, outcome: str, values: dict) -> None:
        self.pending.append((row, customer, outcome, values))

    def mark(self, row: EN, channel: str, message_id: str) -> bool:
        """Record the outcomes so far, then mark row as being handed to channel; False when a row is another
        run's now (the lease ended), and then nothing must be handed over. The rendered parts are written with
        the outcome only: they would travel to the database twice."""
        outcomes = self.take()
        *earlier, last = outcomes or [self.values(row, {})]
        if earlier and self.marks.execute(WRITE, earlier).rowcount != len(earlier):
            return False
        handoff = {**last, "mark_id": row.id, "mark_channel": channel, "mark_message_id": message_id,
                   "sending_at": self.now}
        return self.marks.execute(HANDOFF, handoff).rowcount == (2 if outcomes else 1)

    def finish(self) -> None:
        outcomes = self.take()
        if outcomes:
            db.session.execute(WRITE, outcomes)
        db.session.commit()

    def committed(self) -> list[str]:
        done, self.done = self.done, []
        return done

    def values(self, row: EN, changes: dict) -> dict:
        return {**{name: getattr(row, name) for name in RECORDED}, **changes, "row_id": row.id, "token": self.token}

    def take(self) -> list[dict]:
        """The pending outcomes as WRITE's parameters, once the welcome steps among them are committed."""
        ticked = [tick_welcome(row, customer, self.now) for row, customer, outcome, _ in self.pending
                  if outcome == "sent"]
        if any(ticked):
            db.session.commit()
        outcomes = [self.values(row, {**values, "claim_token": None, "claimed_until": None, "sending_at": None})
                    for row, _, _, values in self.pending]
        self.done.extend(outcome for _, _, outcome, _ in self.pending)
        self.pending.clear()
        return outcomes


def deliver_one(row: EN, customer: Customer | None, suppressed: str | None, channels: Channels, recorder: Recorder,
                now: dt.datetime) -> bool:
    """Send one email and hand its outcome to the recorder; False when the row turned out to be another run's."""
    if suppressed:
        recorder.add(row, customer, "suppressed", {"status": "failed", "last_error": f"suppressed: {suppressed}"})
        return True
    message_id = message.message_id(row.id, row.dedupe_key, row.queued_at, channels.domain())
    # A mark left by a run that died: the email may have gone out, and goes again under the same Message-ID.
    notes = ["an earlier run stopped while handing this email over; sent again"] if row.sending_at else []
    # A claimed row names a channel only when a handoff on it may have gone through: every later attempt uses that
    # channel alone, so a copy is at worst the same tag again or the same message under the same Message-ID.
    only = row.channel
    if row.kind == "milestone" and channels.convertkit is not None and only != "smtp":
        if not recorder.mark(row, "convertkit", message_id):
            return False
        try:
            provider_id = channels.tag(row.payload["milestone"], row.recipient)
            recorder.add(row, customer, *sent(row, "convertkit", provider_id, now, "; ".join(notes)))
            return True
        except SendFailed as error:
            if only == "convertkit":
                note = f"{error}; not sent over SMTP, as the subscriber may have the tag already"
                recorder.add(row, customer, *failed_attempt(row, now, "; ".join([*notes, note])))
                return True
            notes.append(f"{error}; falling back to SMTP")
    columns = {}
    try:
        rendered = render_row(row, customer)
        columns = {"subject": rendered.subject[:200], "body_text": rendered.text, "body_html": rendered.html}
        outgoing = channels.prepare(row.recipient, rendered, message_id)
        if not recorder.mark(row, "smtp", message_id):
            return False
        channels.send(outgoing)
    except SendFailed as error:
        outcome, values = failed_attempt(row, now, "; ".join([*notes, str(error)]), error.permanent)
        recorder.add(row, customer, outcome, {**values, **columns})
        return True
    outcome, values = sent(row, "smtp", outgoing.message_id, now, "; ".join(notes))
    recorder.add(row, customer, outcome, {**values, **columns})
    return True


def render_row(row: EN, customer: Customer | None) -> render.Rendered:
    try:
        return render.render(row, customer)
    except Exception as error:  # a template or payload fault fails this email, not the whole run
        log.exception("email %s could not be rendered", row.id)
        raise SendFailed(f"rendering failed: {type(error).__name__}: {error}") from None


def sent(row: EN, channel: str, provider_id: str, now: dt.datetime, note: str) -> tuple[str, dict]:
    return "sent", {"status": "sent", "channel": channel, "provider_message_id": provider_id, "sent_at": now,
                    "attempts": row.attempts + 1, "last_error": note, "next_attempt_at": None}


def tick_welcome(row: EN, customer: Customer | None, now: dt.datetime) -> bool:
    """SPEC section 7: the step is ticked when the welcome email has actually gone out. True when it changed."""
    if row.kind == "milestone" and row.payload.get("milestone") == "welcome" and customer is not None:
        if customers.set_step(customer, content.WELCOME_STEP, True, ACTOR, when=now):
            snapshots.recalculate([customer.id])
            return True
    return False


def failed_attempt(row: EN, now: dt.datetime, error: str, permanent: bool = False) -> tuple[str, dict]:
    attempts = row.attempts + 1
    if permanent or attempts >= content.MAX_ATTEMPTS:
        return "failed", {"status": "failed", "attempts": attempts, "last_error": error, "next_attempt_at": None}
    return "retried", {"attempts": attempts, "last_error": error, "next_attempt_at": now + content.retry_delay(attempts)}
