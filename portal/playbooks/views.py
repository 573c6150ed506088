"""The playbook pages: the list with the lift leaderboard, a playbook's page, its form, start now, on and off."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .. import analytics, clock
from ..auth import actor, editor_required, login_required
from ..extensions import db
from ..models import Playbook
from ..validation import ValidationError
from . import catalog, lift, service
from .forms import HINT, PlaybookForm

bp = Blueprint("playbooks", __name__, url_prefix="/playbooks")
WORDS = {"condition": catalog.describe_condition, "step": catalog.describe_step}


@bp.get("")
@login_required
def index():
    playbooks = catalog.listing()
    rows = catalog.ranked(playbooks, catalog.leaderboard())
    return render_template("playbooks/index.html", playbooks=playbooks, rows=rows, horizons=lift.HORIZONS,
                           min_sample=lift.MIN_SAMPLE, zone=clock.zone(), **WORDS)


@bp.get("/<int:playbook_id>")
@login_required
def detail(playbook_id: int):
    playbook = db.get_or_404(Playbook, playbook_id)
    tasks = db.session.execute(catalog.recent_tasks(playbook)).all()
    return render_template("playbooks/detail.html", playbook=playbook, tasks=tasks, today=clock.today(),
                           zone=clock.zone(), **WORDS)


def edit_form(playbook: Playbook | None):
    form = PlaybookForm(data=PlaybookForm.data_of(playbook) if playbook and request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            playbook = catalog.save(playbook, form.values(), *actor())
        except ValidationError as error:
            db.session.rollback()
            form.add_error(error)
        else:
            db.session.commit()
            flash(f"Saved {playbook.name}.", "success")
            return redirect(url_for(".detail", playbook_id=playbook.id), 303)
    return render_template("playbooks/form.html", form=form, playbook=playbook, hint=HINT), 422 if form.errors else 200


@bp.route("/new", methods=["GET", "POST"])
@editor_required
def new():
    return edit_form(None)


@bp.route("/<int:playbook_id>/edit", methods=["GET", "POST"])
@editor_required
def edit(playbook_id: int):
    return edit_form(db.get_or_404(Playbook, playbook_id))


@bp.post("/<int:playbook_id>/start")
@editor_required
def start(playbook_id: int):
    playbook = db.get_or_404(Playbook, playbook_id)
    now = clock.now()
    analytics.ensure_todays_scores(clock.local_date(now), wait=True)
    result = service.start(playbook, now, *actor())
    db.session.commit()
    skipped = sum(result.skipped.values())
    note = f"; {skipped} skipped: the daily cap of {result.cap} tasks per owner was reached" if skipped else ""
    flash(f"Started {playbook.name}: {result.created} task(s) created{note}.", "warning" if skipped else "success")
    return redirect(url_for(".detail", playbook_id=playbook.id), 303)


@bp.post("/<int:playbook_id>/active")
@editor_required
def toggle(playbook_id: int):
    playbook = db.get_or_404(Playbook, playbook_id)
    catalog.set_active(playbook, request.form.get("active") == "true", *actor())
    db.session.commit()
    return redirect(url_for(".index"), 303)
