"""Team members who sign in: the rules shared by the team page and `flask users create` / `set-password`.

Functions validate first and raise ValidationError before changing anything; the caller commits.
"""
from __future__ import annotations

from sqlalchemy import func, select

from .. import audit, validation
from ..extensions import db
from ..health.metrics import label
from ..models import ROLES, User
from ..validation import ValidationError

MIN_PASSWORD = 10


def members() -> list[User]:
    return list(db.session.scalars(select(User).order_by(func.lower(User.name), User.id)))


def member(email: str) -> User:
    """The team member with that email (any letter case), or ValidationError."""
    user = db.session.scalars(select(User).where(func.lower(User.email) == email.strip().lower())).first()
    if user is None:
        raise ValidationError(f"no team member has the email {email.strip()}", "email")
    return user


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters", "password")


def new_user(email: str, name: str, role: str, password: str) -> User:
    """A valid user added to the session, or ValidationError naming the field at fault."""
    email = validation.email(email)
    name = validation.text(name, "name", 120, required=True)
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", "role")
    check_password_rules(password)
    if db.session.scalars(select(User).where(func.lower(User.email) == email)).first():
        raise ValidationError(f"a user with email {email} already exists", "email")
    user = User(email=email, name=name, role=role)
    user.set_password(password)
    db.session.add(user)
    return user


def add_member(email: str, name: str, role: str, password: str, actor: str, actor_id: int | None = None) -> User:
    user = new_user(email, name, role, password)
    db.session.flush()
    audit.created(actor, "users", user.email, actor_id)
    audit.record(actor, "users", user.email, {"role": (None, role)}, actor_id)
    return user


def change_password(user: User, password: str, actor: str, actor_id: int | None = None) -> None:
    """A new password, which also ends every session the user has open (User.set_password); audited, never shown."""
    check_password_rules(password)
    user.set_password(password)
    audit.record(actor, "users", user.email, {"password": (None, "changed")}, actor_id)


def keep_an_admin(user: User) -> None:
    """Refuse to take away the last active admin; the rows are locked so two admins cannot race."""
    if user.role != "admin" or not user.active:
        return
    others = select(User.id).where(User.role == "admin", User.active, User.id != user.id)
    if not db.session.scalars(others.order_by(User.id).with_for_update()).all():
        raise ValidationError(f"{user.name} is the last active admin: make someone else an admin first.")


def set_role(user: User, role: str, actor: str, actor_id: int | None = None) -> bool:
    """Give the user another role; returns whether anything changed."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", "role")
    if role == user.role:
        return False
    if user.id == actor_id:
        raise ValidationError("You cannot change your own role: ask another admin.", "role")
    keep_an_admin(user)
    audit.record(actor, "users", user.email, audit.apply_changes(user, {"role": role}), actor_id)
    return True


def set_active(user: User, active: bool, actor: str, actor_id: int | None = None) -> bool:
    """Deactivate (no more sign-ins) or reactivate the user; returns whether anything changed."""
    if active == user.active:
        return False
    if not active and user.id == actor_id:
        raise ValidationError("You cannot deactivate yourself: ask another admin.", "active")
    if not active:
        keep_an_admin(user)
    # Deactivation ends the user's sessions for good: reactivated, they sign in again rather than find old ones alive.
    user.end_sessions()
    audit.record(actor, "users", user.email, audit.apply_changes(user, {"active": active}), actor_id)
    return True


def describe_role(user: User) -> str:
    return f"{user.name} is now {'an' if user.role == 'admin' else 'a'} {label(user.role).lower()}."


def describe_active(user: User) -> str:
    return f"{user.name} can sign in again." if user.active else f"{user.name} was deactivated and can no longer sign in."
