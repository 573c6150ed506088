"""The email log: filter, read one message, re-send a failed one; and the customer page's survey button."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from .. import clock, pages
from ..auth import actor, editor_required, login_required
from ..customers.table import get_customer_or_404
from ..extensions import db
from ..events.views import public_ids
from ..models import EMAIL_STATUSES, EmailNotification
from ..pages import filtered_list
from . import queries, service
from .content import KINDS

bp = Blueprint("emails", __name__)


bp.context_processor(public_ids)  # customer_public_id() in the templates, as on the events pages


@bp.get("/emails")
@login_required
def index():
    return filtered_list(queries, "emails/_rows.html", "emails/index.html",
                         statuses=EMAIL_STATUSES, kinds=KINDS, counts=queries.status_counts(), now=clock.now())


@bp.get("/emails/<int:email_id>")
@login_required
def detail(email_id: int):
    return render_template("emails/detail.html", email=db.get_or_404(EmailNotification, email_id), now=clock.now())


# The stored HTML part, framed by the message page: its own policy lets the email's inline styles
# show while scripts, forms, plugins and remote images (tracking pixels) stay off.
HTML_PART_POLICY = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")


@bp.get("/emails/<int:email_id>/html")
@login_required
def html_part(email_id: int):
    email = db.get_or_404(EmailNotification, email_id)
    return email.body_html, 200, {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": HTML_PART_POLICY,
                                  "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store"}


@bp.post("/emails/<int:email_id>/resend")
@editor_required
def resend(email_id: int):
    email = db.get_or_404(EmailNotification, email_id)
    if service.resend(email, *actor()):
        db.session.commit()
        flash(f"Email {email.id} is queued again; the next delivery run sends it.", "success")
    else:
        flash(f"Email {email.id} is {email.status}, not failed: nothing to re-send.", "error")
    return redirect(url_for(".detail", email_id=email.id), 303)


@bp.post("/customers/<customer_id>/nps-survey")
@editor_required
def send_survey(customer_id: str):
    customer = get_customer_or_404(customer_id)
    if service.queue_nps(customer, *actor()):
        db.session.commit()
        flash("NPS survey queued; the next delivery run sends it.", "success")
    else:
        flash("This customer already has this quarter's NPS survey.", "error")
    return redirect(url_for("customers.detail", customer_id=customer.public_id), 303)
