"""The admin pages: settings (health formula and portal settings) and the team. Admins only."""
from __future__ import annotations

import json
from typing import Callable

from flask import flash, make_response, redirect, render_template, url_for
from flask_wtf import FlaskForm

from .. import clock
from ..auth import actor, admin_required
from ..extensions import db
from ..models import ROLES, User
from ..pages import wants_fragment
from ..validation import ValidationError
from . import bp, settings_service, team
from .forms import ActiveForm, MemberForm, RoleForm, SettingsForm


@bp.context_processor
def page_helpers() -> dict:
    return {
        "roles": ROLES,
        "local_time": lambda moment: moment.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M"),
        "points": settings_service.plain,
    }


def show_error(form: FlaskForm, error: ValidationError) -> None:
    """Put a service's refusal next to the field it names, or above the form."""
    message = str(error)[:1].upper() + str(error)[1:]
    if error.field in form:
        form[error.field].errors.append(message)
    else:
        form.form_errors.append(message)


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings():
    form = SettingsForm(data=settings_service.initial())
    if form.validate_on_submit():
        try:
            saved = settings_service.save(form.values(), *actor())
        except ValidationError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(saved.message, "success")
            return redirect(url_for("admin.settings"), 303)
    return render_template("admin/settings.html", form=form, versions=settings_service.versions())


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    form = MemberForm()
    if form.validate_on_submit():
        try:
            user = team.add_member(form.email.data, form.name.data, form.role.data, form.password.data, *actor())
        except ValidationError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(f"{user.name} was added as {user.role} and can sign in now.", "success")
            return redirect(url_for("admin.users"), 303)
    return render_template("admin/users.html", form=form, users=team.members())


@bp.post("/users/<int:user_id>/role")
@admin_required
def change_role(user_id: int):
    user = db.get_or_404(User, user_id)
    form = RoleForm()
    return change_user(user, form, lambda: team.set_role(user, form.role.data, *actor()), team.describe_role)


@bp.post("/users/<int:user_id>/active")
@admin_required
def change_active(user_id: int):
    user = db.get_or_404(User, user_id)
    form = ActiveForm()
    return change_user(user, form, lambda: team.set_active(user, form.active.data == "true", *actor()),
                       team.describe_active)


def change_user(user: User, form: FlaskForm, change: Callable[[], bool], describe: Callable[[User], str]):
    """Apply one change to a team row: the row again for htmx, a redirect to the team page otherwise."""
    error = None
    if not form.validate_on_submit():
        error = next(iter(form.errors.values()))[0]
    else:
        try:
            change()
            db.session.commit()
        except ValidationError as problem:
            db.session.rollback()
            error = str(problem)
    message = error or describe(user)
    if wants_fragment():
        response = make_response(render_template("admin/_user_row.html", user=user, error=error))
        if not error:
            response.headers["HX-Trigger"] = json.dumps({"toast": message})
        response.vary.add("HX-Request")
        return response
    flash(message, "error" if error else "success")
    return redirect(url_for("admin.users"), 303)
