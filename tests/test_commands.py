"""Operator commands: team users, demo data, first-run set-up, and the factory's settings."""
import pytest
from sqlalchemy import func, select

from portal import config, create_app
from portal.extensions import db
from portal.models import Customer, Engagement, HealthScore, User


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
