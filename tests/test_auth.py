"""Sign-in: every page behind it, CSRF on the form, local redirects only, sessions that end, the throttle."""
import datetime as dt
import re

import pytest
from werkzeug.http import parse_date

from portal import throttle
from portal.auth import load_user, local_path
from portal.extensions import db
from portal.models import LoginAttempt, utcnow

from .conftest import add_user, csrf_token, make_app, saved_cookies, sign_in, signed_in_by_each


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




# Sessions: the cookies carry the user's session token, and a new token ends them all.

STILL_SIGNED_IN = {"session": True, "remember_token": True}
ENDED = {"session": False, "remember_token": False}


def test_the_cookies_carry_the_session_token_not_the_user_id(app, client):
    with app.app_context():
        user = add_user()
        token, user_id = user.session_token, user.id
    sign_in(client, remember=True)
    assert saved_cookies(client)["remember_token"].startswith(token + "|")
    with app.app_context():
        assert load_user(token).id == user_id and load_user(str(user_id)) is None


def test_sign_out_ends_the_session_and_its_remember_cookie(app, client):
    with app.app_context():
        add_user()
    assert sign_in(client, remember=True).status_code == 302
    copied = saved_cookies(client)
    assert signed_in_by_each(app, copied) == STILL_SIGNED_IN  # each cookie alone lets a browser in
    signed_out = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert signed_out.headers["Location"] == "/login"
    assert "You are signed out." in client.get("/login").get_data(as_text=True)
    assert signed_in_by_each(app, copied) == ENDED
    replay = app.test_client()
    replay.set_cookie("remember_token", copied["remember_token"])
    assert replay.get("/").headers["Location"].startswith("/login")
    assert sign_in(client).status_code == 302  # signing in again works


def test_sign_out_everywhere_ends_the_sessions_on_other_devices(app, client):
    with app.app_context():
        add_user()
    sign_in(client, remember=True)
    laptop = saved_cookies(client)
    phone = app.test_client()
    sign_in(phone, remember=True, address="10.0.0.2")
    response = phone.post("/logout/everywhere", data={"csrf_token": csrf_token(phone, "/")})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "signed out on every device" in phone.get("/login").get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert signed_in_by_each(app, laptop) == ENDED


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_every_role_can_sign_out_everywhere_with_the_csrf_token(client, auth, role):
    auth.login(role)
    assert 'formaction="/logout/everywhere"' in client.get("/").get_data(as_text=True)
    assert client.post("/logout/everywhere").status_code == 400
    assert client.get("/").status_code == 200
    assert client.post("/logout/everywhere", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
    assert client.get("/").status_code == 302


# Cookies and HTTPS.

def set_cookie(response, name: str) -> str:
    return next(header for header in response.headers.getlist("Set-Cookie") if header.startswith(name + "="))


def test_cookies_are_http_only_same_site_and_remembered_for_30_days(app, client):
    with app.app_context():
        add_user()
    response = sign_in(client, remember=True)
    for name in ("session", "remember_token"):
        header = set_cookie(response, name)
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header, header
    expires = parse_date(re.search(r"Expires=([^;]+)", set_cookie(response, "remember_token")).group(1))
    assert abs(expires - (utcnow() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)


@pytest.mark.parametrize("variables", [{"SESSION_COOKIE_SECURE": "true"}, {"PORTAL_BASE_URL": "https://cs.example.com"}])
def test_secure_cookies_when_asked_or_served_over_https(app, database_url, monkeypatch, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with app.app_context():
        add_user()
    secure = make_app(database_url)
    response = sign_in(secure.test_client(), remember=True)
    assert "Secure" in set_cookie(response, "session") and "Secure" in set_cookie(response, "remember_token")
    with secure.app_context():
        db.engine.dispose()


HSTS = "Strict-Transport-Security"


def test_hsts_only_on_secure_requests(app, database_url):
    served = make_app(database_url, HSTS_SECONDS=31536000)
    browser = served.test_client()
    assert browser.get("/login", base_url="https://localhost").headers[HSTS] == "max-age=31536000; includeSubDomains"
    assert HSTS not in browser.get("/login").headers
    assert HSTS not in browser.get("/login", headers={"X-Forwarded-Proto": "https"}).headers  # no proxy is trusted


def test_hsts_behind_a_trusted_proxy_that_terminates_https(app, database_url):
    browser = make_app(database_url, HSTS_SECONDS=600, TRUSTED_PROXIES=1).test_client()
    assert browser.get("/login", headers={"X-Forwarded-Proto": "https"}).headers[HSTS] == "max-age=600; includeSubDomains"
    assert HSTS not in browser.get("/login", headers={"X-Forwarded-Proto": "http"}).headers


def test_no_hsts_for_a_portal_served_over_http(client):
    assert HSTS not in client.get("/login", base_url="https://localhost").headers


# The sign-in throttle: growing waits per account, a high limit per address.

def failed_before(app, email: str, count: int, address: str = "10.0.0.66", ago: dt.timedelta = dt.timedelta(0)):
    """`count` failed sign-ins for `email`, the latest `ago` before now."""
    with app.app_context():
        now = utcnow()
        db.session.add_all(LoginAttempt(email=email, address=address, attempted_at=now - ago - dt.timedelta(seconds=n))
                           for n in range(count))
        db.session.commit()


def age_failures(app, by: dt.timedelta) -> None:
    with app.app_context():
        for attempt in db.session.scalars(db.select(LoginAttempt)):
            attempt.attempted_at -= by
        db.session.commit()


def failures_of(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(LoginAttempt.id)).filter_by(email=email))


@pytest.mark.parametrize("failures, seconds", [(0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (10, 32), (14, 512), (15, 900),
                                               (1000, 900)])
def test_the_account_wait_doubles_up_to_15_minutes(failures, seconds):
    assert throttle.account_delay(failures) == seconds


def test_an_office_behind_one_address_is_not_locked_by_its_typos(app, client):
    emails = [f"colleague{number}@example.com" for number in range(10)]
    with app.app_context():
        for email in emails:
            add_user(email=email, name=email)
    for email in emails:
        assert sign_in(client, email=email, password="a typo").status_code == 200
    for email in emails:
        browser = app.test_client()
        assert sign_in(browser, email=email).status_code == 302, email


def test_five_failures_make_the_account_wait_longer_and_longer(app, client):
    with app.app_context():
        add_user()
    for _ in range(5):
        assert "Wrong email or password." in sign_in(client, password="wrong password").get_data(as_text=True)
    waits = []
    for failures in range(6, 10):
        age_failures(app, dt.timedelta(seconds=30))  # past the current wait (16 seconds at most here)
        assert sign_in(client, password="wrong password").status_code == 200
        refused = sign_in(client)  # the right password, during the wait
        assert refused.status_code == 429
        assert "Too many failed sign-ins for this account" in refused.get_data(as_text=True)
        waits.append(int(refused.headers["Retry-After"]))
        assert throttle.account_delay(failures) / 2 < waits[-1] <= throttle.account_delay(failures)
    assert waits == sorted(waits) and len(set(waits)) == 4
    assert failures_of(app, "admin@example.com") == 9  # the refused attempts were not counted


def test_the_right_password_waits_too_and_then_gets_in_and_clears_the_failures(app, client):
    with app.app_context():
        add_user()
    failed_before(app, "admin@example.com", 8)  # an 8-second wait
    refused = sign_in(client)
    assert refused.status_code == 429 and 7 <= int(refused.headers["Retry-After"]) <= 8
    assert "Please wait 8 seconds, then try again." in refused.get_data(as_text=True)
    for _ in range(20):  # hammering during the wait does not make it longer
        assert sign_in(client, password="guess").status_code == 429
    assert failures_of(app, "admin@example.com") == 8
    age_failures(app, dt.timedelta(seconds=9))
    assert sign_in(client).status_code == 302
    assert failures_of(app, "admin@example.com") == 0


def test_an_attacker_cannot_hold_an_account_locked_for_long(app, client):
    with app.app_context():
        add_user()
    failed_before(app, "admin@example.com", 40)  # far more than anyone could make in 15 minutes
    refused = sign_in(client)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= throttle.LONGEST_WAIT
    assert "15 minutes" in refused.get_data(as_text=True)
    age_failures(app, dt.timedelta(minutes=15))
    assert sign_in(client).status_code == 302


def test_failing_for_one_account_does_not_block_another_from_the_same_address(app, client):
    with app.app_context():
        add_user()
        add_user(email="bo@example.com", name="Bo")
    for _ in range(8):
        sign_in(client, email="bo@example.com", password="wrong password")
    assert sign_in(client, email="bo@example.com").status_code == 429
    assert sign_in(client).status_code == 302


def test_fifty_failures_from_one_address_make_that_address_wait(app, client):
    with app.app_context():
        add_user()
    for number in range(throttle.ADDRESS_FAILURES - 1):
        failed_before(app, f"guess{number}@example.com", 1, address="10.0.0.1")
    assert sign_in(client, email="guess@example.com", password="wrong password").status_code == 200
    refused = sign_in(client)
    assert refused.status_code == 429 and 890 <= int(refused.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins from your network" in refused.get_data(as_text=True)
    assert sign_in(client, address="10.0.0.9").status_code == 302
    age_failures(app, dt.timedelta(minutes=15))
    assert sign_in(app.test_client()).status_code == 302


def recorded_addresses(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(db.select(LoginAttempt.address)))


def test_a_client_cannot_choose_its_address_without_a_trusted_proxy(app, client):
    with app.app_context():
        add_user()
    for number in range(throttle.ADDRESS_FAILURES):
        spoofed = {"X-Forwarded-For": f"198.51.100.{number}"}
        sign_in(client, email=f"guess{number}@example.com", password="wrong", address="10.0.0.1", headers=spoofed)
    assert recorded_addresses(app) == {"10.0.0.1"}
    assert sign_in(client, address="10.0.0.1", headers={"X-Forwarded-For": "198.51.100.200"}).status_code == 429


def test_a_trusted_proxy_names_the_client(app, database_url):
    with app.app_context():
        add_user()
    proxied = make_app(database_url, TRUSTED_PROXIES=1)
    browser = proxied.test_client()
    for number in range(throttle.ADDRESS_FAILURES):
        sign_in(browser, email=f"guess{number}@example.com", password="wrong", address="10.0.0.1",
                headers={"X-Forwarded-For": "203.0.113.5"})
    assert recorded_addresses(app) == {"203.0.113.5"}
    assert sign_in(browser, address="10.0.0.1", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 429
    # another office, through the same proxy
    assert sign_in(browser, address="10.0.0.1", headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 302
    with proxied.app_context():
        db.engine.dispose()
