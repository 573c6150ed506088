"""Operator commands: team users, demo data, first-run set-up, and the factory's settings."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from portal import config, create_app
from portal.extensions import db
from portal.models import AuditLog, Customer, Engagement, HealthScore, User

from .conftest import add_user, saved_cookies, sign_in, signed_in_by_each


def test_users_create_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(args=["users", "create", "Lead@Example.com", "--name", "Lee Lead", "--role", "viewer"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert (user.email, user.role) == ("lead@example.com", "viewer")
        assert user.check_password("a long enough password") and "a long enough" not in user.password_hash


@pytest.mark.parametrize(
    "args, password, message",
    [
        (["bad-email", "--name", "X"], "a long enough password", "invalid email"),
        (["x@example.com", "--name", "X"], "short", "at least 10 characters"),
        (["x@example.com", "--name", "X", "--role", "owner"], "a long enough password", "Invalid value"),
    ],
)
def test_users_create_refuses_bad_input(app, runner, args, password, message):
    result = runner.invoke(args=["users", "create", *args], input=password + "\n")
    assert result.exit_code != 0 and message in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 0


def test_users_create_refuses_a_duplicate(runner):
    args = ["users", "create", "x@example.com", "--name", "X"]
    assert runner.invoke(args=args, input="a long enough password\n").exit_code == 0
    result = runner.invoke(args=args, input="a long enough password\n")
    assert result.exit_code == 1 and "already exists" in result.output


def test_users_set_password_changes_it_and_ends_every_session(app, client, runner):
    with app.app_context():
        add_user(email="lee@example.com", name="Lee Lead")
    sign_in(client, "lee@example.com", remember=True)
    copied = saved_cookies(client)
    result = runner.invoke(args=["users", "set-password", "LEE@example.com"], input="a brand new password\n")
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302
    assert signed_in_by_each(app, copied) == {"session": False, "remember_token": False}
    assert sign_in(client, "lee@example.com").status_code == 200  # the old password no longer works
    assert sign_in(client, "lee@example.com", "a brand new password").status_code == 302
    with app.app_context():
        audit = db.session.execute(select(AuditLog.actor, AuditLog.field, AuditLog.new_value)).all()
        assert audit == [("cli", "password", "changed")]


@pytest.mark.parametrize(
    "email, password, message",
    [("nobody@example.com", "a long enough password", "no team member has the email nobody@example.com"),
     ("lee@example.com", "short", "the password needs at least 10 characters")],
)
def test_users_set_password_refuses_bad_input_and_changes_nothing(app, client, runner, email, password, message):
    with app.app_context():
        add_user(email="lee@example.com", name="Lee Lead")
    sign_in(client, "lee@example.com")
    result = runner.invoke(args=["users", "set-password", email], input=password + "\n")
    assert result.exit_code == 1 and result.stdout == "" and result.stderr == f"Error: {message}\n"
    assert client.get("/").status_code == 200
    with app.app_context():
        assert db.session.scalars(select(User)).one().check_password("correct horse battery")


def test_demo_data_shows_every_band_and_stage(app, runner):
    result = runner.invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Customer.id))) == 40
        assert db.session.scalar(select(func.count(Engagement.id))) > 300
        latest = select(func.max(HealthScore.date)).scalar_subquery()
        today = db.session.execute(select(HealthScore.status, HealthScore.stage).where(HealthScore.date == latest)).all()
        assert {status for status, _ in today} == {"champion", "healthy", "needs_attention", "at_risk"}
        assert {stage for _, stage in today} == {"new_signup", "onboarding", "initial_adoption", "regular_usage", "churned"}
        assert db.session.scalar(select(func.count(func.distinct(HealthScore.date)))) == 61
    assert "already has customers" in runner.invoke(args=["demo-data"]).output


def test_setup_creates_one_admin_and_prints_its_password(app, runner):
    first = runner.invoke(args=["setup", "--demo"])
    assert first.exit_code == 0, first.output
    assert "admin user: admin@example.com  password: " in first.output
    again = runner.invoke(args=["setup", "--demo"])
    assert again.exit_code == 0 and "admin user" not in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id)).where(User.role == "admin")) == 1
        assert db.session.scalar(select(func.count(Customer.id))) == 40


def test_factory_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://cs@db.internal/portal")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("SCHEDULER_ENABLED", "false")
    settings = config.from_environment(tmp_path)
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://cs@db.internal/portal"
    assert settings["SECRET_KEY"] == "from-env" and settings["SCHEDULER_ENABLED"] is False
    assert settings["WEBHOOK_MAX_AGE_SECONDS"] == 300 and settings["GITHUB_WEBHOOK_SECRET"] is None


def test_defaults_need_no_configuration(monkeypatch, tmp_path):
    for name in ("DATABASE_URL", "SECRET_KEY", "SCHEDULER_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    settings = config.from_environment(tmp_path)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'portal.db'}"
    assert settings["SECRET_KEY"] == config.from_environment(tmp_path)["SECRET_KEY"]  # generated once, then kept
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_test_config_overrides(database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.testing and app.config["SECRET_KEY"] == "x"


SECURITY_VARIABLES = ("PORTAL_BASE_URL", "SESSION_COOKIE_SECURE", "HSTS_SECONDS", "REMEMBER_COOKIE_DAYS",
                      "TRUSTED_PROXIES")


@pytest.fixture
def plain_environment(monkeypatch):
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def cookie_settings(tmp_path) -> tuple:
    settings = config.from_environment(tmp_path)
    return (settings["SESSION_COOKIE_SECURE"], settings["REMEMBER_COOKIE_SECURE"], settings["HSTS_SECONDS"])


def test_cookie_and_proxy_defaults_suit_a_local_http_portal(plain_environment, tmp_path):
    settings = config.from_environment(tmp_path)
    assert cookie_settings(tmp_path) == (False, False, 0) and settings["TRUSTED_PROXIES"] == 0
    assert settings["REMEMBER_COOKIE_DURATION"] == dt.timedelta(days=30)
    assert (settings["REMEMBER_COOKIE_SAMESITE"], settings["REMEMBER_COOKIE_HTTPONLY"]) == ("Lax", True)


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({"PORTAL_BASE_URL": "https://cs.example.com"}, (True, True, 31536000)),
        ({"PORTAL_BASE_URL": "HTTPS://cs.example.com"}, (True, True, 31536000)),
        ({"PORTAL_BASE_URL": "https://cs.example.com", "SESSION_COOKIE_SECURE": "false", "HSTS_SECONDS": "0"},
         (False, False, 0)),
        ({"SESSION_COOKIE_SECURE": "true"}, (True, True, 0)),
        ({"SESSION_COOKIE_SECURE": "true", "HSTS_SECONDS": "86400"}, (True, True, 86400)),
    ],
)
def test_https_makes_cookies_secure_and_turns_hsts_on_unless_set(plain_environment, tmp_path, variables, expected):
    for name, value in variables.items():
        plain_environment.setenv(name, value)
    assert cookie_settings(tmp_path) == expected


def test_remember_days_and_trusted_proxies_are_read(plain_environment, tmp_path):
    plain_environment.setenv("REMEMBER_COOKIE_DAYS", "7")
    plain_environment.setenv("TRUSTED_PROXIES", "2")
    settings = config.from_environment(tmp_path)
    assert settings["REMEMBER_COOKIE_DURATION"] == dt.timedelta(days=7) and settings["TRUSTED_PROXIES"] == 2


@pytest.mark.parametrize(
    "name, value, message",
    [("TRUSTED_PROXIES", "one", "TRUSTED_PROXIES must be a whole number of 0 or more, not 'one'"),
     ("TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES must be a whole number of 0 or more"),
     ("HSTS_SECONDS", "1.5", "HSTS_SECONDS must be a whole number of 0 or more"),
     ("REMEMBER_COOKIE_DAYS", "0", "REMEMBER_COOKIE_DAYS must be a whole number of 1 or more")],
)
def test_a_bad_number_stops_the_portal_naming_the_variable(plain_environment, tmp_path, name, value, message):
    plain_environment.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        config.from_environment(tmp_path)
