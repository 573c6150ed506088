"""`flask --app wsgi ...` operator commands: team users, demo data and first-run set-up."""
from __future__ import annotations

import secrets
import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, select

from . import demo
from .admin import team
from .churn import cli as churn_cli
from .extensions import db
from .models import ROLES, Customer, User
from .validation import ValidationError

users = AppGroup("users", help="Team members who sign in to the portal.")
ACTOR = "cli"  # as the audit log names the command line


def read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def create_user(email: str, name: str, role: str, password: str) -> User:
    """Validated by the same rules as the portal's team page (portal.admin.team), then committed."""
    user = team.new_user(email, name, role, password)
    db.session.commit()
    return user


@users.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Shown in the portal and the audit log.")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
def users_create(email: str, name: str, role: str) -> None:
    """Create a team member; the password is asked for, or read from stdin when it is not a terminal."""
    try:
        user = create_user(email, name, role, read_password())
    except ValidationError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created {user.role} {user.email}")


@users.command("set-password")
@click.argument("email")
def users_set_password(email: str) -> None:
    """Give a team member a new password (asked for, or read from stdin) and end every session they have open."""
    try:
        user = team.member(email)
        team.change_password(user, read_password(), ACTOR)
    except ValidationError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"new password for {user.email}; their sessions on every device have ended")


@click.command("demo-data")
@with_appcontext
def demo_data() -> None:
    """Fill an empty database with about 40 plausible customers and 60 days of engagement."""
    if db.session.scalar(select(func.count(Customer.id))):
        raise click.ClickException("the database already has customers; demo data goes into an empty one")
    count = demo.load()
    click.echo(f"loaded {count} demo customers")


@click.command("setup")
@with_appcontext
@click.option("--demo/--no-demo", "with_demo", default=False, help="Load demo data into an empty database.")
@click.option("--admin-email", default="admin@example.com", show_default=True)
def setup(with_demo: bool, admin_email: str) -> None:
    """First run: upgrade the database, optionally load demo data, create an admin if there is none."""
    upgrade()
    if with_demo and not db.session.scalar(select(func.count(Customer.id))):
        click.echo(f"loaded {demo.load()} demo customers")
    if not db.session.scalar(select(func.count(User.id)).where(User.role == "admin", User.active)):
        password = secrets.token_urlsafe(12)
        create_user(admin_email, "Admin", "admin", password)
        click.echo(f"admin user: {admin_email}  password: {password}")


def customers_group() -> AppGroup:
    """`flask --app wsgi customers erase ID`: the same command as `customer-tracking erase ID`, for operators who
    work with the flask commands."""
    from .cli import erase

    group = AppGroup("customers", help="Customers' personal data.")
    group.add_command(click.Command("erase", callback=with_appcontext(erase.callback), params=erase.params,
                                    help=erase.help))
    return group


def init_app(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(customers_group())
    app.cli.add_command(demo_data)
    app.cli.add_command(setup)
    app.cli.add_command(churn_cli.churn_demo)
