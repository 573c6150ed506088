"""Changes the email pages make: unsubscribes, NPS answers and comments, surveys queued, re-sends. Audited.

The callers commit.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from .. import audit, clock
from ..extensions import db
from ..feedback import service as feedback_service
from ..models import Customer, EmailNotification, Feedback, NpsSurvey, format_id
from . import content, outbox, tokens
from .tokens import BadLink

LINK_ACTOR = "customer (email link)"


def link_customer(token: str) -> Customer:
    customer = db.session.get(Customer, tokens.unsubscribe_customer_id(token))
    if customer is None:
        raise BadLink("This unsubscribe link names no customer any more.")
    return customer


def unsubscribe(token: str, when: dt.datetime | None = None) -> Customer:
    customer = link_customer(token)
    if customer.unsubscribed_at is None:
        changes = audit.apply_changes(customer, {"unsubscribed_at": when or clock.now()})
        audit.record(LINK_ACTOR, "customers", customer.public_id, changes)
    return customer


def queue_nps(customer: Customer, actor: str, user_id: int | None = None, today: dt.date | None = None) -> bool:
    """One survey per customer per quarter: the nps_surveys row and its email. False when this quarter's exists."""
    today = today or clock.today()
    period = content.quarter(today)
    if db.session.scalars(select(NpsSurvey).filter_by(customer_id=customer.id, period=period)).first():
        return False
    now = clock.now()
    survey = NpsSurvey(customer_id=customer.id, period=period, sent_at=now, expires_at=now + tokens.NPS_VALID)
    db.session.add(survey)
    db.session.flush()
    outbox.queue_rows([{"customer_id": customer.id, "kind": "nps_survey", "recipient": customer.email,
                        "dedupe_key": f"nps_survey:{customer.public_id}:{period}",
                        "payload": {"survey_id": survey.id, "period": period}}])
    audit.record(actor, "nps_surveys", f"{customer.public_id}/{period}", {"record": (None, "queued")}, user_id)
    return True


def survey_of(survey_id: int) -> NpsSurvey:
    survey = db.session.get(NpsSurvey, survey_id)
    if survey is None:
        raise BadLink("This survey no longer exists.")
    return survey


def open_survey(token: str, now: dt.datetime | None = None) -> tuple[NpsSurvey, int, Feedback | None]:
    """What a survey link shows, changing nothing (mail scanners fetch every link): the survey, the link's score,
    and the recorded answer when there is one."""
    survey_id, score = tokens.nps_answer(token)
    survey, now = survey_of(survey_id), now or clock.now()
    feedback = db.session.get(Feedback, survey.feedback_id) if survey.feedback_id else None
    if feedback is None and survey.answered_at is not None:
        raise BadLink("This survey was already answered.")
    if feedback is None and survey.expires_at < now:
        raise BadLink("This survey has closed: surveys can be answered for 30 days.")
    return survey, score, feedback


def answer_nps(token: str, score: int, now: dt.datetime | None = None) -> tuple[NpsSurvey, Feedback, bool]:
    """Record the score the customer confirmed (the link's, or another they picked on its page) once: (survey, its
    feedback, whether this answer recorded it)."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0 to 10, not {score}")
    now = now or clock.now()
    survey, _, feedback = open_survey(token, now)
    if feedback is not None:
        return survey, feedback, False
    # One atomic claim, so two clicks at once record one answer.
    claimed = db.session.execute(update(NpsSurvey).where(NpsSurvey.id == survey.id, NpsSurvey.answered_at.is_(None))
                                 .values(answered_at=now).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        db.session.refresh(survey)
        feedback = db.session.get(Feedback, survey.feedback_id) if survey.feedback_id else None
        if feedback is None:
            raise BadLink("This survey was already answered.")
        return survey, feedback, False
    # Recorded as any feedback is, so a detractor's answer opens the owner's follow-up task.
    feedback = feedback_service.record(db.session.get(Customer, survey.customer_id),
                                       {"nps": score, "source": "survey", "created_at": now}, LINK_ACTOR)
    survey.feedback_id, survey.answered_at = feedback.id, now  # the UPDATE above wrote answered_at already
    return survey, feedback, True


def add_nps_comment(token: str, comment: str) -> Feedback:
    """The thank-you page's comment, added once to the survey's feedback row."""
    survey_id, _ = tokens.nps_answer(token)
    survey = survey_of(survey_id)
    feedback = db.session.get(Feedback, survey.feedback_id) if survey.feedback_id else None
    if feedback is None:
        raise BadLink("Answer the survey first: pick a score in the email.")
    if feedback.comment:
        raise BadLink("We already have your comment: thank you.")
    changes = audit.apply_changes(feedback, {"comment": comment.strip()[:5000]})
    audit.record(LINK_ACTOR, "feedback", f"{format_id('c', survey.customer_id)}/{feedback.id}", changes)
    return feedback


def resend(notification: EmailNotification, actor: str, user_id: int | None = None) -> bool:
    """A failed email back to the queue with its attempts reset; False when it is not failed."""
    if notification.status != "failed":
        return False
    before = {"status": notification.status, "attempts": notification.attempts}
    outbox.requeue(notification)
    audit.record(actor, "email_notifications", str(notification.id),
                 {name: (old, getattr(notification, name)) for name, old in before.items()}, user_id)
    return True
