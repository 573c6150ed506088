"""The team's judgement beside the computed score: sentiment, and a band override with a reason and an expiry.

The computed score always stays visible; an override shows who set it and until when, is audited, and lives
in its own table, which recalculation never writes, so it holds until it expires or someone removes it.
"""
from __future__ import annotations

import datetime as dt
from functools import partial

from flask import render_template, request

from .. import audit, clock, validation
from ..health import metrics
from ..auth import actor, editor_required
from ..extensions import db
from ..models import SENTIMENTS, Assessment, Customer
from ..validation import ValidationError
from ..pages import saved_or_refused
from .table import bp, get_customer_or_404

MAX_OVERRIDE_DAYS = 365


def assessment_of(customer: Customer) -> Assessment:
    return db.session.get(Assessment, customer.id) or Assessment(customer_id=customer.id, override_reason="")


def set_sentiment(customer: Customer, sentiment: str, actor_name: str, user_id: int | None = None) -> None:
    value = validation.choice(sentiment, ("", *SENTIMENTS), "sentiment") or None
    record = assessment_of(customer)
    changes = audit.apply_changes(record, {"sentiment": value})
    if changes:
        record.sentiment_by, record.sentiment_at = actor_name, clock.now()
        db.session.add(record)
        audit.record(actor_name, "assessments", customer.public_id, changes, user_id)


def set_override(customer: Customer, band: str, reason: str, until: str, actor_name: str,
                 user_id: int | None = None) -> None:
    """Override the band until a day (inclusive); every part is required and checked before anything is stored."""
    band = validation.choice(band, metrics.STATUSES, "band")
    reason = validation.text(reason, "reason", 500, required=True)
    day = validation.iso_date(until, "until")
    today = clock.today()
    if not today <= day <= today + dt.timedelta(days=MAX_OVERRIDE_DAYS):
        raise ValidationError(f"until must be between today and {MAX_OVERRIDE_DAYS} days from now", "until")
    record = assessment_of(customer)
    changes = audit.apply_changes(record, {"band_override": band, "override_reason": reason, "override_until": day})
    record.override_by, record.override_at = actor_name, clock.now()
    db.session.add(record)
    audit.record(actor_name, "assessments", customer.public_id, changes, user_id)


def clear_override(customer: Customer, actor_name: str, user_id: int | None = None) -> None:
    record = db.session.get(Assessment, customer.id)
    if record is None or record.band_override is None:
        return
    changes = audit.apply_changes(record, {"band_override": None, "override_reason": "", "override_until": None})
    record.override_by = record.override_at = None
    audit.record(actor_name, "assessments", customer.public_id, changes, user_id)


def card(customer: Customer, error: str | None = None, status: int = 200):
    return render_template("customers/_assessment.html", customer=customer, assessment=assessment_of(customer),
                           today=clock.today(), sentiments=SENTIMENTS, bands=metrics.STATUSES, error=error,
                           form=request.form if error else {}), status


@bp.post("/<customer_id>/sentiment")
@editor_required
def sentiment(customer_id: str):
    customer = get_customer_or_404(customer_id)
    return saved_or_refused(lambda: set_sentiment(customer, request.form.get("sentiment", ""), *actor()),
                            partial(card, customer))


@bp.post("/<customer_id>/override")
@editor_required
def override(customer_id: str):
    customer = get_customer_or_404(customer_id)

    def change() -> None:
        if request.form.get("action") == "remove":
            clear_override(customer, *actor())
        else:
            set_override(customer, request.form.get("band", ""), request.form.get("reason", ""),
                         request.form.get("until", ""), *actor())

    return saved_or_refused(change, partial(card, customer))
