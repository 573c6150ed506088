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


def survey_page(action, **context):
    """Run the link's action and show the survey page, or the friendly page when the link cannot be used."""
    try:
        feedback, recorded = action()
    except BadLink as error:
        return link_problem(error)
    db.session.commit()
    return render_template("emails/public/nps.html", feedback=feedback, recorded=recorded, **context)


@bp.get("/nps/<token>")
def nps_answer(token: str):
    return survey_page(lambda: service.answer_nps(token)[1:], token=token)


@bp.post("/nps/<token>/comment")
def nps_comment(token: str):
    comment = request.form.get("comment", "")
    if not comment.strip():
        return link_problem(BadLink("The comment was empty; your score is recorded all the same."))
    return survey_page(lambda: (service.add_nps_comment(token, comment), False), token=token, commented=True)


@bp.get("/guide")
def guide():
    return render_template("emails/public/guide.html")
