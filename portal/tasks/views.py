"""The tasks page `/tasks` (mine by default) and the complete / snooze buttons shared with the customer page."""
from __future__ import annotations

from functools import partial

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from .. import clock, pages
from ..auth import actor, editor_required, login_required
from ..extensions import db
from ..models import Customer, Intervention
from ..validation import page_number, whole_number
from . import service

bp = Blueprint("tasks", __name__, url_prefix="/tasks")
PAGE_SIZE = 50


@bp.get("")
@login_required
def index():
    show = request.args.get("show") if request.args.get("show") in service.SHOWS else "mine"
    snoozed = request.args.get("snoozed") == "1"
    today = clock.today()
    page = pages.paginate(service.listing(show, current_user.id, today, snoozed), page_number(request.args.get("page")),
                          PAGE_SIZE, counted=service.pending(show, current_user.id, today, snoozed))
    return pages.fragment_or_page("tasks/_list.html", "tasks/index.html", page=page, show=show, snoozed=snoozed,
                            today=today, shows=service.SHOWS,
                            page_link=lambda number: url_for(".index", show=show, snoozed="1" if snoozed else None,
                                                             page=number))


def task_or_404(task_id: int) -> Intervention:
    task = db.get_or_404(Intervention, task_id)
    if task.kind != "task":
        abort(404)
    return task


def render_task(task: Intervention, error: str | None = None, status: int = 200):
    customer = db.session.get(Customer, task.customer_id)
    return render_template("tasks/_task.html", task=task, customer=customer, today=clock.today(), error=error,
                           with_customer=request.args.get("context") != "customer"), status


@bp.post("/<int:task_id>/complete")
@editor_required
def complete(task_id: int):
    task = task_or_404(task_id)
    return pages.saved_or_refused(lambda: service.complete(task, *actor()), partial(render_task, task), 409)


@bp.post("/<int:task_id>/snooze")
@editor_required
def snooze(task_id: int):
    task = task_or_404(task_id)
    days = request.form.get("days", "")
    return pages.saved_or_refused(lambda: service.snooze(task, whole_number(days, service.MAX_SNOOZE_DAYS) or 0, *actor()),
                                  partial(render_task, task))
