"""Sign-in and sign-out for team members, and the access rules every view uses."""
from __future__ import annotations

import datetime as dt
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import delete, func, select
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from .extensions import db, login_manager
from .models import LoginAttempt, User, utcnow
from .validation import database_key

bp = Blueprint("auth", __name__)
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=5)
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see that page."


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user; a deactivated one is signed out at their next request."""
    key = database_key(user_id)
    user = db.session.get(User, key) if key is not None else None
    return user if user is not None and user.active else None


def role_required(*roles: str):
    """Signed in and holding one of the roles, or 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


# Shorthands for the views: who may change things, and who may administer the portal.
editor_required = role_required("admin", "member")
admin_required = role_required("admin")


def actor() -> tuple[str, int]:
    """The signed-in user as the audit log names them."""
    return current_user.name, current_user.id


def local_path(target: str | None) -> str | None:
    """Only a path on this site may be a redirect target."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Keep me signed in")


def locked_out(email: str, address: str) -> bool:
    """5 failures for one account or one address within 5 minutes lock both out for 5 minutes."""
    now = utcnow()
    for column, value in ((LoginAttempt.email, email), (LoginAttempt.address, address)):
        recent = db.session.scalars(
            select(LoginAttempt.attempted_at).where(column == value, LoginAttempt.attempted_at > now - 2 * LOCKOUT)
            .order_by(LoginAttempt.attempted_at.desc()).limit(MAX_FAILURES)
        ).all()
        if len(recent) == MAX_FAILURES and recent[0] - recent[-1] <= LOCKOUT and now < recent[0] + LOCKOUT:
            return True
    return False


def record_failure(email: str, address: str) -> None:
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < utcnow() - dt.timedelta(days=1)))
    db.session.add(LoginAttempt(email=email, address=address))
    db.session.commit()


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        email, address = form.email.data.strip().lower(), request.remote_addr or "unknown"
        if locked_out(email, address):
            return render_template("auth/login.html", form=form, locked=True), 429
        user = db.session.scalars(select(User).where(func.lower(User.email) == email)).first()
        if user is not None and user.active and user.check_password(form.password.data):
            login_user(user, remember=form.remember.data)
            return redirect(local_path(request.args.get("next")) or url_for("dashboard.index"))
        record_failure(email, address)
        flash("Wrong email or password.", "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))
