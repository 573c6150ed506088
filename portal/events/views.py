"""The events log, one event's payload, the unmatched events with their assignment, and the metrics-API key."""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from ..auth import actor, editor_required, login_required
from ..customers import service as customers
from ..customers.table import get_customer_or_404
from ..extensions import db
from ..models import EVENT_OUTCOMES, EVENT_SOURCES, Customer, Event, format_id
from ..pages import filtered_list, fragment_or_page
from ..validation import ValidationError, page_number
from . import queries, service

bp = Blueprint("events", __name__)


@bp.context_processor
def public_ids() -> dict:
    return {"customer_public_id": lambda key: format_id(Customer.PREFIX, key)}


@bp.get("/events")
@login_required
def index():
    return filtered_list(queries, "events/_rows.html", "events/index.html",
                         sources=EVENT_SOURCES, outcomes=EVENT_OUTCOMES, types=queries.event_types())


@bp.get("/events/<int:event_id>")
@login_required
def detail(event_id: int):
    event = db.get_or_404(Event, event_id)
    payload = json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False)
    return render_template("events/detail.html", event=event, payload=payload,
                           sender=queries.sender(event.source, event.payload))


def render_unmatched(status: int = 200, **errors):
    """The unmatched events; errors maps an event id to the message shown by its assign form."""
    page = queries.paginate(queries.Filters(outcome="unmatched", page=page_number(request.args.get("page"))))
    return render_template("events/unmatched.html", page=page, sender=queries.sender, errors=errors,
                           page_link=lambda n: url_for(".unmatched", page=n)), status


@bp.get("/events/unmatched")
@login_required
def unmatched():
    return render_unmatched()


@bp.post("/events/<int:event_id>/assign")
@editor_required
def assign(event_id: int):
    event = db.get_or_404(Event, event_id)
    text = request.form.get("customer_id", "").strip()
    key = Customer.key_of(text)
    customer = db.session.get(Customer, key) if key is not None else None
    if customer is None:
        return render_unmatched(422, **{str(event_id): f"No customer has the id {text[:20]!r}: use one such as c1001."})
    try:
        assigned = service.assign(event, customer, *actor())
    except ValidationError as error:  # a payload that no longer reads as it did when it arrived
        db.session.rollback()
        flash(f"Event {event_id} could not be applied: {error}. Nothing changed.", "error")
        return redirect(url_for(".unmatched"), 303)
    if not assigned:
        db.session.rollback()
        flash(f"Event {event_id} is not unmatched any more; nothing changed.", "error")
        return redirect(url_for(".unmatched"), 303)
    db.session.commit()
    flash(f"Event {event_id} applied to {customer.organization} ({customer.public_id}).", "success")
    return redirect(url_for(".unmatched"), 303)


@bp.post("/customers/<customer_id>/api-key")
@editor_required
def api_key(customer_id: str):
    customer = get_customer_or_404(customer_id)
    key = customers.issue_api_key(customer, *actor())
    db.session.commit()
    response, status, headers = fragment_or_page("events/_api_key.html", "events/api_key.html",
                                                 customer=customer, new_key=key)
    return response, status, {**headers, "Cache-Control": "no-store"}
