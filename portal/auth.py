"""Sign-in and sign-out for team members, and the access rules every view uses."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from . import throttle
from .extensions import db, login_manager
from .models import User

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to see that page."


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    """The user whose current session token the session or remember cookie carries (User.get_id); a token that was
    replaced (sign-out, new password, deactivation) or a deactivated user finds no one, which signs the browser out."""
    return db.session.scalars(select(User).where(User.session_token == session_token, User.active)).first()


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


def refused(form: LoginForm, wait: throttle.Wait):
    response = make_response(render_template("auth/login.html", form=form, wait=wait), 429)
    response.headers["Retry-After"] = str(wait.seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        email, address = form.email.data.strip().lower(), request.remote_addr or "unknown"
        wait = throttle.wait_before_attempt(email, address)
        if wait is not None:
            return refused(form, wait)
        user = db.session.scalars(select(User).where(func.lower(User.email) == email)).first()
        if user is not None and user.active and user.check_password(form.password.data):
            throttle.clear_failures(email)
            login_user(user, remember=form.remember.data)
            return redirect(local_path(request.args.get("next")) or url_for("dashboard.index"))
        throttle.record_failure(email, address)
        flash("Wrong email or password.", "error")
    return render_template("auth/login.html", form=form)


def end_sessions_here_and_everywhere() -> None:
    """Sign-out gives the user a new session token, which ends this session and its remember cookie, and also every
    other session the user has open on other devices. A session cookie is kept by the browser, not the server, so
    ending one session alone would need a server-side record of every session, expired and pruned; for a small
    internal team, signing in again on one's other devices is a fair price for a sign-out that a copied cookie
    cannot outlive, on a borrowed or shared machine included."""
    user = current_user._get_current_object()
    user.end_sessions()
    db.session.commit()
    logout_user()


@bp.post("/logout")
@login_required
def logout():
    end_sessions_here_and_everywhere()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """Ends every session and remember cookie of the user, on every device, here included."""
    end_sessions_here_and_everywhere()
    flash("You are signed out on every device.", "success")
    return redirect(url_for("auth.login"))
