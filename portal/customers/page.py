"""The customer page: profile, onboarding checklist, health card, charts, timeline, notes and feedback."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from .. import audit, clock
from ..health import explain, metrics, risk, snapshots
from ..auth import actor, editor_required, login_required
from ..emails import queries as email_queries, suppression
from ..extensions import db
from ..models import SENTIMENTS, Engagement, HealthScore, HealthSettings, Intervention, User
from ..validation import ValidationError, database_key, page_number
from ..feedback import service as feedback_service
from ..tasks import service as tasks
from . import assessment, queries, service, timeline
from .forms import DetailsForm, FeedbackForm, InterventionForm, team_choices
from .table import bp, get_customer_or_404

HISTORY_DAYS = 90


def history_of(customer, today: dt.date) -> list[HealthScore]:
    return db.session.scalars(
        select(HealthScore).where(HealthScore.customer_id == customer.id,
                                  HealthScore.date > today - dt.timedelta(days=HISTORY_DAYS), HealthScore.date <= today)
        .order_by(HealthScore.date)
    ).all()


def health_context(customer) -> dict:
    """Today's score explained: components and inputs, change since 7 and 30 days, why, what next."""
    today = clock.today()
    history = history_of(customer, today)
    if not history or history[-1].date != today:  # every change rescores; only a new day can leave a gap
        snapshots.recalculate([customer.id], today)
        db.session.commit()
        history = history_of(customer, today)
    current = history[-1]
    weights = snapshots.weights_of(db.session.get(HealthSettings, current.settings_version))

    def at(days: int):
        earlier = [snapshot for snapshot in history if snapshot.date <= today - dt.timedelta(days=days)]
        return earlier[-1] if earlier else None

    changes = [(days, at(days)) for days in (7, 30)]
    return {
        "score": current,
        "stage": current.stage,
        "components": explain.components(current, weights),
        "changes": [(days, old.score if old else None, explain.why_it_moved(old, current, f"since {days} days ago"))
                    for days, old in changes],
        "next_band": explain.next_band(current, weights),
        "history_chart": history_chart(history),
        "signals": risk.signals([customer.id], today).get(customer.id, []),
        "override": assessment.assessment_of(customer).override_on(today),
    }


def history_chart(history: list[HealthScore]) -> dict:
    changed = [snapshot for before, snapshot in zip(history, history[1:])
               if snapshot.settings_version != before.settings_version]
    return {
        "type": "line",
        "data": {
            "labels": [snapshot.date.isoformat() for snapshot in history],
            "datasets": [
                {"label": "Health score", "data": [snapshot.score for snapshot in history], "borderColor": "#2f5bd3",
                 "pointRadius": 0, "tension": 0.2},
                {"label": "Settings changed", "type": "scatter", "pointRadius": 6, "backgroundColor": "#b7791f",
                 "data": [{"x": snapshot.date.isoformat(), "y": snapshot.score} for snapshot in changed]},
            ],
        },
        "options": {"scales": {"y": {"min": 0, "max": 100}}},
    }


def engagement_chart(customer) -> dict:
    today = clock.today()
    first = today - dt.timedelta(days=HISTORY_DAYS - 1)
    rows = {row.date: row for row in db.session.scalars(
        select(Engagement).where(Engagement.customer_id == customer.id, Engagement.date.between(first, today)))}
    days = [first + dt.timedelta(days=offset) for offset in range(HISTORY_DAYS)]
    colours = {"issues_tagged": "#667085", "prs_generated": "#2f5bd3", "prs_merged": "#0e7a4f", "prs_rejected": "#c53030"}
    return {
        "type": "bar",
        "data": {
            "labels": [day.isoformat() for day in days],
            "datasets": [{"label": metrics.label(count), "backgroundColor": colour,
                          "data": [getattr(rows[day], count) if day in rows else 0 for day in days]}
                         for count, colour in colours.items()],
        },
        "options": {"scales": {"x": {"ticks": {"maxTicksLimit": 10}}}},
    }


def page_context(customer) -> dict:
    entries, more = timeline.page(customer, 1)
    intervention_form = InterventionForm()
    intervention_form.assignee.choices = team_choices(queries.team())
    return {"customer": customer, **health_context(customer), "engagement_chart": engagement_chart(customer),
            "details_form": DetailsForm(obj=customer.onboarding), "intervention_form": intervention_form,
            "feedback_form": FeedbackForm(), "entries": entries, "more": more, "timeline_page": 1,
            "steps": metrics.STEPS, "team": queries.team(), "cohorts": queries.cohorts(),
            "assessment": assessment.assessment_of(customer), "today": clock.today(), "sentiments": SENTIMENTS,
            "bands": metrics.STATUSES, "form": {},
            "tasks": db.session.scalars(tasks.for_customer(customer.id)).all(),
            "recent_emails": email_queries.recent_for(customer.id, 5), "email_block": suppression.reason(customer),
            "churn": churn_risk(customer.id)}


def churn_risk(customer_id: int):
    from ..churn.service import risk_of  # numpy: loaded with the first customer page, not with every process

    return risk_of(customer_id)


@bp.get("/<customer_id>")
@login_required
def detail(customer_id: str):
    customer = get_customer_or_404(customer_id)
    return render_template("customers/detail.html", **page_context(customer)), 200, {"Vary": "HX-Request"}


@bp.post("/<customer_id>/onboarding/<step>")
@editor_required
def toggle_step(customer_id: str, step: str):
    customer = get_customer_or_404(customer_id)
    if step not in metrics.STEPS:
        abort(404)
    name, user_id = actor()
    if service.set_step(customer, step, request.form.get("done") == "true", name, user_id=user_id):
        snapshots.recalculate([customer.id])
    db.session.commit()
    context = {"customer": customer, "steps": metrics.STEPS, **health_context(customer)}
    return render_template("customers/_checklist_response.html", **context)


@bp.post("/<customer_id>/details")
@editor_required
def save_details(customer_id: str):
    customer = get_customer_or_404(customer_id)
    form = DetailsForm()
    if not form.validate():
        return render_template("customers/_details_state.html", error="; ".join(
            error for errors in form.errors.values() for error in errors)), 422
    try:
        changes = service.set_details(customer, form.blocker_type.data, form.notes.data or "", *actor())
    except ValidationError as error:
        db.session.rollback()
        return render_template("customers/_details_state.html", error=str(error)), 422
    if "blocker_type" in changes:  # the day's snapshot keeps the blocker: the dashboard counts it from there
        snapshots.recalculate([customer.id])
    db.session.commit()
    return render_template("customers/_details_state.html", saved_at=clock.now())


@bp.get("/<customer_id>/timeline")
@login_required
def timeline_page(customer_id: str):
    customer = get_customer_or_404(customer_id)
    number = page_number(request.args.get("page"), last=10_000)
    entries, more = timeline.page(customer, number)
    return render_template("customers/_timeline_items.html", customer=customer, entries=entries, more=more,
                           timeline_page=number)


@bp.post("/<customer_id>/interventions")
@editor_required
def add_intervention(customer_id: str):
    customer = get_customer_or_404(customer_id)
    form = InterventionForm()
    key = database_key(form.assignee.data)
    assignee = db.session.get(User, key) if key is not None else None
    if not form.validate() or (form.assignee.data and assignee is None):
        problems = "; ".join(f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items())
        kind = form.kind.data if form.kind.data in form.kind.choices else "note"
        flash(f"The {kind} was not saved: " + (problems or "choose an active team member"), "error")
        return redirect(url_for(".detail", customer_id=customer.public_id), 303)
    name, user_id = actor()
    item = Intervention(customer_id=customer.id, kind=form.kind.data, title=form.title.data.strip(),
                        body=form.body.data or "", due_date=form.due_date.data,
                        assignee_id=assignee.id if assignee else None, trigger="person", created_by_id=user_id)
    db.session.add(item)
    db.session.flush()
    audit.created(name, "interventions", f"{customer.public_id}/{item.id}", user_id)
    db.session.commit()
    flash(f"{form.kind.data.title()} added.", "success")
    return redirect(url_for(".detail", customer_id=customer.public_id), 303)


@bp.post("/<customer_id>/feedback")
@editor_required
def add_feedback(customer_id: str):
    customer = get_customer_or_404(customer_id)
    form = FeedbackForm()
    empty = form.nps.data is None and form.csat.data is None and not any(
        (form.comment.data, form.feature_request.data, form.bug_report.data))
    if not form.validate() or empty:
        problems = "; ".join(f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items())
        flash("The feedback was not saved: " + (problems or "give a score or a comment"), "error")
        return redirect(url_for(".detail", customer_id=customer.public_id), 303)
    feedback_service.record(customer, {"nps": form.nps.data, "csat": form.csat.data, "comment": form.comment.data or "",
                                       "feature_request": form.feature_request.data or "",
                                       "bug_report": form.bug_report.data or "", "source": form.source.data}, *actor())
    db.session.commit()
    flash("Feedback recorded.", "success")
    return redirect(url_for(".detail", customer_id=customer.public_id), 303)
