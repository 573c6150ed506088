"""The customers table: search, filters, sort, paging, edits in place, bulk changes, a new customer."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from .. import clock
from ..health import metrics, snapshots
from ..analytics import ensure_todays_scores
from ..auth import actor, editor_required, login_required
from ..extensions import db
from ..models import CUSTOMER_STATUSES, Customer
from ..pages import fragment_or_page
from ..validation import ValidationError
from . import queries, service
from .forms import NewCustomerForm, team_choices

bp = Blueprint("customers", __name__, url_prefix="/customers")


def get_customer_or_404(public_id: str) -> Customer:
    key = Customer.key_of(public_id)
    return db.get_or_404(Customer, key) if key is not None else abort(404)


def cell_tag() -> str:
    """Cells are td in the table and dd on the profile."""
    return "dd" if request.args.get("tag") == "dd" else "td"


def render_cell(customer: Customer, field: str, tag: str) -> str:
    return render_template("customers/_cell.html", customer=customer, field=field, tag=tag,
                           can_edit=current_user.role != "viewer")


def around_the_table() -> dict:
    """What the page shows around the table: the filters and the bulk change, with their choices. Search, sort and
    paging swap the table alone, and skip these."""
    cohorts, team = queries.filters_choices()
    return {"cohorts": cohorts, "team": team, "bulk_form": FlaskForm(), "stages": metrics.STAGES,
            "bands": metrics.STATUSES, "statuses": CUSTOMER_STATUSES}


@bp.get("")
@login_required
def index():
    filters = queries.Filters.from_args(request.args)
    today = clock.today()
    ensure_todays_scores(today)
    return fragment_or_page("customers/_table.html", "customers/index.html", around_the_table, filters=filters,
                            page=queries.paginate(filters, today),
                            page_link=lambda number: url_for(".index", **filters.args(page=number)))


def editable_or_404(customer_id: str, field: str) -> Customer:
    if field not in service.EDITABLE:
        abort(404)
    return get_customer_or_404(customer_id)


def render_editor(customer: Customer, field: str, **extra) -> str:
    return render_template("customers/_cell_editor.html", customer=customer, field=field, team=queries.team(),
                           cohorts=queries.cohorts(), tag=cell_tag(), **extra)


@bp.get("/<customer_id>/cell/<field>")
@login_required
def cell(customer_id: str, field: str):
    return render_cell(editable_or_404(customer_id, field), field, cell_tag())


@bp.get("/<customer_id>/cell/<field>/edit")
@editor_required
def edit_cell(customer_id: str, field: str):
    return render_editor(editable_or_404(customer_id, field), field)


@bp.post("/<customer_id>/cell/<field>")
@editor_required
def save_cell(customer_id: str, field: str):
    customer = editable_or_404(customer_id, field)
    text = request.form.get("value", "")
    try:
        changes = service.update_fields(customer, {field: text}, *actor())
    except ValidationError as error:
        db.session.rollback()
        return render_editor(customer, field, error=str(error), value=text), 422
    if changes:
        snapshots.recalculate([customer.id])
    db.session.commit()
    return render_cell(customer, field, cell_tag())


@bp.post("/bulk")
@editor_required
def bulk():
    form = FlaskForm()
    field, _, value = request.form.get("change", "").partition(":")
    keys = [Customer.key_of(text) for text in request.form.getlist("ids")]
    customers = [db.session.get(Customer, key) for key in keys if key is not None]
    back = redirect(request.form.get("back") or url_for(".index"), 303)
    if not form.validate() or field not in ("owner", "cohort", "status") or not all(customers) or not customers:
        flash("Choose one or more customers, a field and a value.", "error")
        return back
    try:
        for customer in customers:
            service.update_fields(customer, {field: value}, *actor())
    except ValidationError as error:
        db.session.rollback()
        flash(f"Nothing changed: {error}", "error")
        return back
    snapshots.recalculate([customer.id for customer in customers])
    db.session.commit()
    flash(f"Set {field} for {len(customers)} customer(s).", "success")
    return back


@bp.route("/new", methods=["GET", "POST"])
@editor_required
def new():
    form = NewCustomerForm()
    form.owner.choices = team_choices(queries.team())
    if form.validate_on_submit():
        name, user_id = actor()
        try:
            customer = service.add_customer(form.fields(), name, signup_date=form.signup_date.data, user_id=user_id)
            if form.owner.data:
                service.update_fields(customer, {"owner": form.owner.data}, name, user_id)
        except ValidationError as error:
            db.session.rollback()
            form.add_error(error)
        else:
            snapshots.recalculate([customer.id])
            db.session.commit()
            flash(f"Added {customer.organization} as {customer.public_id}.", "success")
            return redirect(url_for(".detail", customer_id=customer.public_id), 303)
    return render_template("customers/new.html", form=form, cohorts=queries.cohorts()), 422 if form.errors else 200
