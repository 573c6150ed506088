"""The jobs page: each job's schedule, next and last run, a run-now button and live progress; the runs below."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from .. import audit, clock
from ..auth import actor, admin_required
from ..extensions import db
from ..pages import fragment_or_page, wants_fragment
from ..validation import page_number
from . import queries
from .registry import UnknownJob
from .scheduler import scheduler

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
# The runs list listens for this event (HX-Trigger) and reloads itself.
RUNS_CHANGED = {"HX-Trigger": "job-runs-changed"}


def job_status_or_404(name: str) -> queries.JobStatus:
    try:
        job = scheduler.registry().get(name)
    except UnknownJob:
        abort(404)
    return queries.status(job, queries.last_runs([name]).get(name), clock.zone(), clock.now())


def runs_context(job: str | None = None) -> dict:
    now = clock.now()
    page = queries.runs_page(page_number(request.args.get("page")), job)
    # The list's pages and refreshes come from the index, whose ?job= narrows the list to one job.
    return {"page": page, "page_link": lambda number: url_for(".index", job=job, page=number),
            "outcome_of": lambda run: queries.shown_outcome(run, scheduler.registry().find(run.job), now),
            "job_label": lambda name: getattr(scheduler.registry().find(name), "label", name),
            "zone": clock.zone()}


@bp.get("")
@admin_required
def index():
    items = queries.statuses(scheduler.registry(), clock.zone(), clock.now())
    job = request.args.get("job", "")
    only = job if job in scheduler.registry() else None
    return fragment_or_page("jobs/_runs.html", "jobs/index.html", items=items,
                            scheduler_running=scheduler.running(), **runs_context(only))


@bp.get("/<name>")
@admin_required
def detail(name: str):
    """The job's self-rendering component when htmx polls it; its own page with its runs otherwise."""
    item = job_status_or_404(name)
    response, status, headers = fragment_or_page("jobs/_job.html", "jobs/detail.html", item=item, **runs_context(name))
    # Polling stops with this answer once the run has ended: the runs list below refreshes to show how.
    return response, status, headers if item.running else {**headers, **RUNS_CHANGED}


@bp.post("/<name>/run")
@admin_required
def run_now(name: str):
    job_status_or_404(name)
    started = scheduler.run_now(name)
    if started is None:
        message, category = f"{name} is already running; its progress is shown below.", "error"
    else:
        who, user_id = actor()
        audit.created(who, "job_runs", f"{name}/{started.run_id}", user_id)
        db.session.commit()
        message, category = f"{name} started.", "success"
    if wants_fragment():
        item = job_status_or_404(name)
        return render_template("jobs/_job.html", item=item, message=message, category=category,
                               zone=clock.zone()), 200, {"Vary": "HX-Request", **RUNS_CHANGED}
    flash(message, category)
    return redirect(url_for(".index"), 303)
