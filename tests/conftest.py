"""Fixtures in the manner of flaskr's: app, client, runner, a clean database per test, seed data.

The suite runs on SQLite by default and on PostgreSQL when TEST_POSTGRES_URL names a server
(for example postgresql+psycopg://postgres@127.0.0.1:5432/postgres): a throwaway database is
created there for the session and dropped at its end.
"""
from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path

import pytest
from flask_migrate import upgrade
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.health import snapshots
from portal.cli import cli
from portal.extensions import db
from portal.models import User

POSTGRES = os.environ.get("TEST_POSTGRES_URL")
# Property tests check what comes out, not how fast: on a busy two-core machine an example can take longer than
# Hypothesis's default 200 ms deadline.
hypothesis_settings.register_profile("portal", deadline=None)
hypothesis_settings.load_profile("portal")


class Databases:
    """Creates empty databases for the session and removes them at its end."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.created: list[str] = []

    def new(self) -> str:
        if not POSTGRES:
            return f"sqlite:///{self.tmp_path_factory.mktemp('db') / 'portal.db'}"
        name = f"portal_test_{uuid.uuid4().hex[:12]}"
        server = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        server.dispose()
        self.created.append(name)
        return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        server = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    pool = Databases(tmp_path_factory)
    yield pool
    pool.drop_all()


def make_app(database_url: str, **extra):
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SCHEDULER_ENABLED": False,
            **extra,
        }
    )


@pytest.fixture(scope="session")
def database_url(databases):
    url = databases.new()
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def clean(app) -> None:
    with app.app_context():
        db.session.remove()
        tables = [table.name for table in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(text(f"DELETE FROM {table}"))
        # Leave the database as a fresh upgrade does: with the default health settings.
        snapshots.current_settings()
        db.session.commit()


@pytest.fixture
def app(database_url):
    app = make_app(database_url)
    yield app
    clean(app)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def tracking(app):
    """Run a customer-tracking command against the test app, as the console script would."""
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(cli, [str(arg) for arg in args], obj=app)


def add_user(email="admin@example.com", name="Ada Admin", role="admin", password="correct horse battery"):
    user = User(email=email, name=name, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def sign_in_browser(page, live_server: str, email="admin@example.com", password="correct horse battery") -> None:
    """Sign in through the real /login form in the browser and wait for the dashboard."""
    from playwright.sync_api import expect

    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client, path="/login") -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def sign_in(client, email="admin@example.com", password="correct horse battery", remember=False, address="10.0.0.1",
            headers=None):
    """POST the sign-in form as a browser at `address` would, "Keep me signed in" ticked when `remember`."""
    form = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if remember:
        form["remember"] = "y"
    return client.post("/login", data=form, environ_base={"REMOTE_ADDR": address}, headers=headers)


SESSION_COOKIES = ("session", "remember_token")


def saved_cookies(client) -> dict[str, str]:
    """The session and remember-me cookies the browser holds, as someone who copied them would keep them."""
    return {name: client.get_cookie(name).value for name in SESSION_COOKIES}


def replayed(app, name: str, value: str) -> int:
    """The status of the dashboard for a fresh browser that sets one saved cookie again."""
    browser = app.test_client()
    browser.set_cookie(name, value)
    return browser.get("/").status_code


def signed_in_by_each(app, cookies: dict[str, str]) -> dict[str, bool]:
    return {name: replayed(app, name, value) == 200 for name, value in cookies.items()}


class Auth:
    def __init__(self, app, client):
        self.app, self.client = app, client

    def login(self, role="admin", password="correct horse battery"):
        email = f"{role}@example.com"
        with self.app.app_context():
            if not db.session.scalars(db.select(User).filter_by(email=email)).first():
                add_user(email=email, name=f"{role.title()} User", role=role, password=password)
        token = csrf_token(self.client)
        return self.client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def auth(app, client):
    return Auth(app, client)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free local port, for the browser tests."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.skip("BROWSER TESTS SKIPPED: Debian's chromium is not installed (apt-get install -y chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="session", autouse=True)
def patient_browser_assertions():
    """Browser assertions wait up to 15 s rather than Playwright's 5: on a busy two-core CI machine a page, its
    scripts and a debounced htmx request can take longer than 5 s, which is slowness, not a failure."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
