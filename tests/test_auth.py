"""Sign-in: every page behind it, CSRF on the form, local redirects only."""
import datetime as dt

import pytest

from portal.auth import local_path

from .conftest import add_user, csrf_token


def test_pages_need_a_signed_in_user(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_sign_in_and_out(client, auth):
    assert auth.login().headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Dashboard" in page and "Admin User" in page
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_shows_an_error(app, client):
    with app.app_context():
        add_user()
    token = csrf_token(client)
    response = client.post("/login", data={"email": "admin@example.com", "password": "nope", "csrf_token": token})
    assert response.status_code == 200 and "Wrong email or password." in response.get_data(as_text=True)


def test_deactivated_users_cannot_sign_in(app, client):
    with app.app_context():
        user = add_user()
        user.active = False
        from portal.extensions import db
        db.session.commit()
    token = csrf_token(client)
    response = client.post("/login", data={"email": "admin@example.com", "password": "correct horse battery",
                                           "csrf_token": token})
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_login_form_needs_the_csrf_token(app, client):
    with app.app_context():
        add_user()
    response = client.post("/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert response.status_code == 400


def test_form_errors_are_shown_by_the_field(client):
    token = csrf_token(client)
    page = client.post("/login", data={"email": "not-an-email", "password": "", "csrf_token": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Invalid email address." in text and "This field is required." in text


def test_next_is_followed_only_when_local(app, client):
    with app.app_context():
        add_user()
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/x", data={"email": "admin@example.com",
                                                                 "password": "correct horse battery", "csrf_token": token})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    "target, expected",
    [("/customers?page=2", "/customers?page=2"), ("https://evil.example/", None), ("//evil.example", None),
     ("/\\evil.example", None), ("javascript:alert(1)", None), ("", None), (None, None)],
)
def test_local_path(target, expected):
    assert local_path(target) == expected


def test_security_headers(client):
    headers = client.get("/login").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_nul_character_is_refused_before_it_reaches_a_query(app, client, auth):
    auth.login("member")
    token = csrf_token(client, "/customers")
    for path in ("/customers?q=a%00b", "/customers?cohort=%00", "/events?customer=%00", "/login?next=/%00"):
        assert client.get(path).status_code == 400, path
    form = {"email": "nul@example.com", "organization": "Org\x00", "github_username": "nul-org", "cohort": "Beta",
            "industry": "SaaS", "team_size": "3", "signup_date": "2026-11-01", "csrf_token": token}
    refused = client.post("/customers/new", data=form)
    assert refused.status_code == 400 and "NUL character" in refused.get_data(as_text=True)
    assert client.post("/customers/new", data={**form, "organization": "Org"}).status_code == 303
    with app.app_context():
        from portal.extensions import db
        from portal.models import Customer

        assert db.session.scalars(db.select(Customer.organization)).all() == ["Org"]


def test_errors_answer_json_to_api_clients(client):
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json()["error"] == "Not Found"
    assert "404" in client.get("/no-such-page").get_data(as_text=True)


def test_deactivating_signs_out_an_open_session(app, client, auth):
    auth.login("member")
    assert client.get("/").status_code == 200
    with app.app_context():
        from portal.extensions import db
        from portal.models import User

        db.session.scalars(db.select(User).filter_by(email="member@example.com")).one().active = False
        db.session.commit()
    assert client.get("/").status_code == 302


def sign_in(client, email="admin@example.com", password="correct horse battery", address="10.0.0.1"):
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_five_failures_lock_the_account_for_five_minutes(app, client):
    with app.app_context():
        add_user()
    for _ in range(5):
        assert sign_in(client, password="wrong password").status_code == 200
    locked = sign_in(client)  # the right password, but too late
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert sign_in(client, address="10.0.0.2").status_code == 429  # the account, from anywhere
    with app.app_context():
        from portal.extensions import db
        from portal.models import LoginAttempt

        for attempt in db.session.scalars(db.select(LoginAttempt)):
            attempt.attempted_at -= dt.timedelta(minutes=5, seconds=1)
        db.session.commit()
    assert sign_in(client).status_code == 302


def test_five_failures_from_one_address_lock_that_address(app, client):
    with app.app_context():
        add_user()
    for number in range(5):
        sign_in(client, email=f"guess{number}@example.com", password="wrong password")
    assert sign_in(client).status_code == 429
    assert sign_in(client, address="10.0.0.9").status_code == 302
