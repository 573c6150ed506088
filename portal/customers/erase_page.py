"""Erasing a customer's personal data from the portal: a confirmation page, then a POST. Admins only."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm

from ..auth import actor, admin_required
from ..extensions import db
from . import erasure
from .table import bp, get_customer_or_404


@bp.get("/<customer_id>/erase")
@admin_required
def confirm_erase(customer_id: str):
    customer = get_customer_or_404(customer_id)
    return render_template("customers/erase.html", customer=customer, form=FlaskForm())


@bp.post("/<customer_id>/erase")
@admin_required
def erase(customer_id: str):
    customer = get_customer_or_404(customer_id)
    form = FlaskForm()
    if not form.validate_on_submit():
        return render_template("customers/erase.html", customer=customer, form=form), 400
    if customer.erased_at is not None:
        flash(f"{customer.public_id} was already erased.", "error")
    else:
        erasure.erase(customer, *actor())
        db.session.commit()
        flash(f"The personal data of {customer.public_id} was erased; its counts and scores stay.", "success")
    return redirect(url_for(".detail", customer_id=customer.public_id), 303)
