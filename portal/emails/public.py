"""Pages reached from emails without signing in: unsubscribe, NPS answers, the getting-started guide.

The links are signed (portal.emails.tokens); a bad, expired or used one gets a friendly page.
"""
from __future__ import annotations

from flask import Blueprint, render_template, request

from ..extensions import csrf, db
from . import service
from .tokens import BadLink

bp = Blueprint("emails_public", __name__)


def link_problem(error: BadLink):
    db.session.rollback()
    return render_template("emails/public/link_problem.html", message=str(error)), 400


@bp.get("/unsubscribe/<token>")
def unsubscribe(token: str):
    """A confirmation step: mail scanners follow links, and a GET must not unsubscribe anyone."""
    try:
        customer = service.link_customer(token)
    except BadLink as error:
        return link_problem(error)
    return render_template("emails/public/unsubscribe.html", customer=customer, token=token, done=False)


# Exempt from CSRF: mail clients POST here in one click (RFC 8058) without a form; the signed token is the proof.
@bp.post("/unsubscribe/<token>")
@csrf.exempt
def confirm_unsubscribe(token: str):
    try:
        customer = service.unsubscribe(token)
    except BadLink as error:
        return link_problem(error)
    db.session.commit()
    return render_template("emails/public/unsubscribe.html", customer=customer, token=token, done=True)


def survey_page(action, status: int = 200, **context):
    """Run the link's action and show the survey page, or the friendly page when the link cannot be used."""
    try:
        context = {**context, **action()}
    except BadLink as error:
        return link_problem(error)
    db.session.commit()
    return render_template("emails/public/nps.html", scores=range(11), **context), status


@bp.get("/nps/<token>")
def nps_answer(token: str):
    """The score the link chose, with a button that records it: mail scanners fetch every link in an email, and a
    GET that recorded would answer the survey for the customer (often with 0) before they clicked."""
    def show():
        _, score, feedback = service.open_survey(token)
        return {"feedback": feedback, "chosen": score}

    return survey_page(show, token=token)


def nps_score(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 2 and int(text) <= 10 else None


@bp.post("/nps/<token>")
def confirm_nps_answer(token: str):
    score = nps_score(request.form.get("score"))
    if score is None:
        def unchosen():
            _, chosen, feedback = service.open_survey(token)
            return {"feedback": feedback, "chosen": chosen, "error": "Pick a score from 0 to 10."}

        return survey_page(unchosen, status=422, token=token)

    def record():
        _, feedback, recorded = service.answer_nps(token, score)
        return {"feedback": feedback, "recorded": recorded}

    return survey_page(record, token=token)


@bp.post("/nps/<token>/comment")
def nps_comment(token: str):
    comment = request.form.get("comment", "")
    if not comment.strip():
        return link_problem(BadLink("The comment was empty; your score is recorded all the same."))
    return survey_page(lambda: {"feedback": service.add_nps_comment(token, comment), "commented": True}, token=token)


@bp.get("/guide")
def guide():
    return render_template("emails/public/guide.html")
