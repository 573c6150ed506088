"""Admin pages: settings (versioned health formula, portal settings) and the team. Admins only."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal import clock
from portal.health import settings, snapshots
from portal.admin import settings_service, team
from portal.customers import service
from portal.extensions import db
from portal.health.metrics import STEPS
from portal.models import AuditLog, HealthScore, HealthSettings, User
from portal.validation import ValidationError

from .conftest import add_user, csrf_token, saved_cookies, signed_in_by_each, sign_in as sign_in_as

PASSWORD = "correct horse battery"
DEFAULTS = {
    "onboarding_weight": "30", "activity_per_day": "5", "activity_max": "30", "success_weight": "0.25",
    "volume_per_pr": "2", "volume_max": "15", "champion_min": "85", "healthy_min": "70",
    "needs_attention_min": "50", "window_days": "30", "trigger_label": "rsolv", "pr_branch_prefix": "rsolv/",
    "reengagement_days": "7", "risk_inactive_days": "14", "risk_rejection_percent": "50", "risk_blocker_days": "7",
    "playbook_daily_cap": "10", "erase_churned_after_days": "0",
}
POSTS = ["/settings", "/users", "/users/{id}/role", "/users/{id}/active"]
PAGES = [("get", "/settings"), ("get", "/users")] + [("post", path) for path in POSTS]


def other_user(app, email="mo@example.com", name="Mo Member", role="member") -> int:
    with app.app_context():
        return add_user(email=email, name=name, role=role).id


def audit_rows(app, table):
    with app.app_context():
        return db.session.execute(
            select(AuditLog.actor, AuditLog.record_id, AuditLog.field, AuditLog.old_value, AuditLog.new_value)
            .where(AuditLog.table_name == table).order_by(AuditLog.id)
        ).all()


def sign_in(app, email, password=PASSWORD):
    """A separate browser: does this account get in?"""
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})
    return response.status_code == 302


# Access rules

@pytest.mark.parametrize("method, path", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(app, client, method, path):
    response = getattr(client, method)(path.format(id=other_user(app)), data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ["member", "viewer"])
@pytest.mark.parametrize("method, path", PAGES)
def test_only_admins_may_open_or_change_anything(app, client, auth, role, method, path):
    target = other_user(app)
    auth.login(role)
    data = {**DEFAULTS, "onboarding_weight": "10", "role": "viewer", "active": "false", "csrf_token": csrf_token(client, "/")}
    response = getattr(client, method)(path.format(id=target), data=data)
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(User, target).role == "member" and db.session.get(User, target).active
        assert db.session.scalar(select(func.count()).select_from(HealthSettings)) == 1


@pytest.mark.parametrize("path", POSTS)
def test_changes_need_the_csrf_token(app, client, auth, path):
    target = other_user(app)
    auth.login()
    assert client.post(path.format(id=target), data={**DEFAULTS, "role": "viewer", "active": "false"}).status_code == 400


def test_only_admins_see_the_links(client, auth):
    auth.login("member")
    page = client.get("/").get_data(as_text=True)
    assert 'href="/settings"' not in page and 'href="/users"' not in page


# Settings

def test_settings_form_starts_from_the_current_values(client, auth):
    auth.login()
    page = client.get("/settings").get_data(as_text=True)
    assert 'name="onboarding_weight" required step="0.01" type="number" value="30"' in page
    assert 'value="0.25"' in page and 'value="rsolv"' in page and 'value="rsolv/"' in page
    assert "Versions of the health settings" in page and "v1" in page


def test_a_health_change_adds_a_version_and_recalculates_every_score(app, client, auth):
    with app.app_context():
        customer = service.add_customer({"email": "c@example.com", "organization": "Org", "github_username": "org"},
                                        actor="test")
        for step in STEPS:
            service.set_step(customer, step, True, actor="test")
        snapshots.recalculate()
        db.session.commit()
        customer_id = customer.id

    def snapshot():
        with app.app_context():
            row = db.session.scalars(select(HealthScore).filter_by(customer_id=customer_id, date=clock.today())).one()
            return row.score, row.settings_version

    assert snapshot() == (30, 1)
    auth.login()
    data = {**DEFAULTS, "onboarding_weight": "20.5", "csrf_token": csrf_token(client, "/settings")}
    response = client.post("/settings", data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/settings"
    page = client.get("/settings").get_data(as_text=True)
    assert "Settings saved; every score was recalculated." in page and "v2" in page and "Admin User" in page
    assert snapshot() == (20, 2)
    with app.app_context():
        first, second = db.session.scalars(select(HealthSettings).order_by(HealthSettings.version)).all()
        assert (first.onboarding_weight, first.created_by) == (30, "system")
        assert (second.onboarding_weight, second.champion_min, second.created_by) == (20.5, 85, "Admin User")
    assert audit_rows(app, "health_settings") == [("Admin User", "v2", "onboarding_weight", "30.00", "20.5")]
    assert audit_rows(app, "app_settings") == []


def test_portal_settings_alone_add_no_version(app, client, auth):
    auth.login()
    data = {**DEFAULTS, "trigger_label": " fix-me ", "reengagement_days": "14", "csrf_token": csrf_token(client, "/settings")}
    assert client.post("/settings", data=data, follow_redirects=True).get_data(as_text=True).count("Settings saved.") == 1
    with app.app_context():
        assert settings.get("trigger_label") == "fix-me" and settings.get("reengagement_days") == 14
        assert db.session.scalar(select(func.count()).select_from(HealthSettings)) == 1
    assert audit_rows(app, "app_settings") == [("Admin User", "portal", "trigger_label", "rsolv", "fix-me"),
                                               ("Admin User", "portal", "reengagement_days", "7", "14")]
    unchanged = client.post("/settings", data={**data, "trigger_label": "fix-me"}, follow_redirects=True)
    assert "Nothing changed" in unchanged.get_data(as_text=True)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("onboarding_weight", "-1", "Enter a number from 0 to 100."),
        ("activity_per_day", "1.255", "Use at most two decimal places."),
        ("volume_max", "lots", "Not a valid decimal value."),
        ("volume_per_pr", "NaN", "Enter a number."),
        ("success_weight", "2", "Enter a number from 0 to 1."),
        ("activity_max", "", "This field is required."),
        ("healthy_min", "90", "Must be below the champion band (85)."),
        ("needs_attention_min", "70", "Must be below the healthy band (70)."),
        ("champion_min", "101", "Enter a whole number from 1 to 100."),
        ("window_days", "0", "Enter a whole number from 1 to 365."),
        ("window_days", "1.5", "Not a valid integer value."),
        ("trigger_label", "", "This field is required."),
        ("pr_branch_prefix", "   ", "PR branch prefix is required."),
        ("reengagement_days", "0", "Reengagement days must be at least 1, not 0."),
        ("reengagement_days", "soon", "Reengagement days must be a whole number"),
        ("risk_rejection_percent", "101", "Risk rejection percent must be at most 100."),
        ("risk_blocker_days", "0", "Risk blocker days must be at least 1, not 0."),
        ("reengagement_days", "3651", "Reengagement days must be at most 3,650."),
        ("risk_inactive_days", "9" * 30, "Risk inactive days must be from 1 to 3,650."),
        ("playbook_daily_cap", "2147483648", "Playbook daily cap must be from 1 to 100,000."),
    ],
)
def test_bad_settings_are_shown_by_the_field_and_nothing_is_saved(app, client, auth, field, value, message):
    auth.login()
    data = {**DEFAULTS, "onboarding_weight": "10", "trigger_label": "changed", field: value,
            "csrf_token": csrf_token(client, "/settings")}
    response = client.post("/settings", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page
    assert f'<p class="field-error" id="{field}-error">{message}' in page and 'aria-invalid="true"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(HealthSettings)) == 1
        assert settings.get("trigger_label") == "rsolv"
        assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_a_concurrent_save_of_the_same_version_is_refused_cleanly(ctx, monkeypatch):
    stale = snapshots.current_settings()
    db.session.add(HealthSettings(version=2, created_by="Other Admin"))
    db.session.flush()
    monkeypatch.setattr(snapshots, "current_settings", lambda: stale)
    values = {**DEFAULTS, "onboarding_weight": Decimal("10")}
    with pytest.raises(ValidationError, match="Another admin saved the settings"):
        settings_service.save({**values, "champion_min": 85, "healthy_min": 70, "needs_attention_min": 50,
                               "window_days": 30}, "Admin User")
    db.session.rollback()


def test_settings_show_what_people_typed_as_text(app, client, auth):
    with app.app_context():
        add_user(email="admin@example.com", name='"><img src=x onerror=alert(1)>', role="admin", password=PASSWORD)
    auth.login()
    data = {**DEFAULTS, "volume_max": "10", "trigger_label": "<script>alert(1)</script>",
            "csrf_token": csrf_token(client, "/settings")}
    page = client.post("/settings", data=data, follow_redirects=True).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page and "&#34;&gt;&lt;img src=x" in page


# Team

def test_team_page_lists_everyone(app, client, auth):
    other_user(app)
    auth.login()
    page = client.get("/users").get_data(as_text=True)
    assert "Mo Member" in page and "mo@example.com" in page and "Admin User" in page
    assert 'aria-label="Role of Mo Member"' in page and "Deactivate" in page


def test_an_added_member_can_sign_in(app, client, auth):
    auth.login()
    data = {"name": "Nia New", "email": "Nia@Example.com", "role": "viewer", "password": "a long enough password",
            "csrf_token": csrf_token(client, "/users")}
    response = client.post("/users", data=data)
    assert response.status_code == 303
    assert "Nia New was added as viewer" in client.get("/users").get_data(as_text=True)
    with app.app_context():
        user = db.session.scalars(select(User).filter_by(email="nia@example.com")).one()
        assert user.role == "viewer" and user.active
    assert sign_in(app, "nia@example.com", "a long enough password")
    assert audit_rows(app, "users") == [("Admin User", "nia@example.com", "record", None, "created"),
                                        ("Admin User", "nia@example.com", "role", None, "viewer")]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"email": "MO@example.com"}, "A user with email mo@example.com already exists"),
        ({"password": "too short"}, "The password needs at least 10 characters"),
        ({"email": "not-an-email"}, "Invalid email"),
        ({"name": "  "}, "Name is required"),
        ({"role": "owner"}, "Not a valid choice"),
    ],
)
def test_bad_members_are_refused(app, client, auth, change, message):
    other_user(app)
    auth.login()
    data = {"name": "Nia New", "email": "nia@example.com", "role": "member", "password": "a long enough password",
            "csrf_token": csrf_token(client, "/users"), **change}
    response = client.post("/users", data=data)
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 2
    assert audit_rows(app, "users") == []


def test_change_a_role(app, client, auth):
    target = other_user(app)
    auth.login()
    response = client.post(f"/users/{target}/role", data={"role": "admin", "csrf_token": csrf_token(client, "/users")})
    assert response.status_code == 303 and response.headers["Location"] == "/users"
    assert "Mo Member is now an admin." in client.get("/users").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, target).role == "admin"
    assert audit_rows(app, "users") == [("Admin User", "mo@example.com", "role", "member", "admin")]


def test_a_deactivated_member_cannot_sign_in_until_reactivated(app, client, auth):
    target = other_user(app)
    assert sign_in(app, "mo@example.com")
    auth.login()
    token = csrf_token(client, "/users")
    client.post(f"/users/{target}/active", data={"active": "false", "csrf_token": token})
    assert "Mo Member was deactivated" in client.get("/users").get_data(as_text=True)
    assert not sign_in(app, "mo@example.com")
    client.post(f"/users/{target}/active", data={"active": "true", "csrf_token": token})
    assert sign_in(app, "mo@example.com")
    assert audit_rows(app, "users") == [("Admin User", "mo@example.com", "active", "true", "false"),
                                        ("Admin User", "mo@example.com", "active", "false", "true")]


def test_deactivation_ends_the_members_sessions_and_reactivation_needs_a_new_sign_in(app, client, auth):
    target = other_user(app)
    members_browser = app.test_client()
    sign_in_as(members_browser, "mo@example.com", remember=True)
    copied = saved_cookies(members_browser)
    auth.login()
    token = csrf_token(client, "/users")
    client.post(f"/users/{target}/active", data={"active": "false", "csrf_token": token})
    ended = {"session": False, "remember_token": False}
    assert members_browser.get("/").status_code == 302 and signed_in_by_each(app, copied) == ended
    client.post(f"/users/{target}/active", data={"active": "true", "csrf_token": token})
    assert members_browser.get("/").status_code == 302 and signed_in_by_each(app, copied) == ended
    assert sign_in_as(members_browser, "mo@example.com").status_code == 302
    assert members_browser.get("/").status_code == 200


def test_a_role_change_keeps_the_session(app, client, auth):
    target = other_user(app)
    members_browser = app.test_client()
    sign_in_as(members_browser, "mo@example.com")
    auth.login()
    client.post(f"/users/{target}/role", data={"role": "viewer", "csrf_token": csrf_token(client, "/users")})
    assert members_browser.get("/").status_code == 200


@pytest.mark.parametrize(
    "action, data, message",
    [("role", {"role": "member"}, "You cannot change your own role"),
     ("active", {"active": "false"}, "You cannot deactivate yourself")],
)
def test_admins_cannot_demote_or_deactivate_themselves(app, client, auth, action, data, message):
    other_user(app, "second@example.com", "Second Admin", "admin")
    auth.login()
    with app.app_context():
        me = db.session.scalars(select(User).filter_by(email="admin@example.com")).one().id
    response = client.post(f"/users/{me}/{action}", data={**data, "csrf_token": csrf_token(client, "/users")},
                           follow_redirects=True)
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert (db.session.get(User, me).role, db.session.get(User, me).active) == ("admin", True)
    assert audit_rows(app, "users") == []


def test_another_admin_may_be_demoted_while_one_remains(app, client, auth):
    target = other_user(app, "second@example.com", "Second Admin", "admin")
    auth.login()
    client.post(f"/users/{target}/role", data={"role": "viewer", "csrf_token": csrf_token(client, "/users")})
    with app.app_context():
        assert db.session.get(User, target).role == "viewer"


@pytest.mark.parametrize("change", [lambda user: team.set_role(user, "member", "Someone"),
                                    lambda user: team.set_active(user, False, "Someone")])
def test_the_last_active_admin_is_kept(ctx, change):
    only = add_user()
    add_user(email="old@example.com", name="Old Admin").active = False
    db.session.commit()
    with pytest.raises(ValidationError, match="Ada Admin is the last active admin"):
        change(only)
    assert only.role == "admin" and only.active


@pytest.mark.parametrize("action", ["role", "active"])
def test_unknown_users_are_404(client, auth, action):
    auth.login()
    response = client.post(f"/users/999/{action}", data={"role": "admin", "active": "true",
                                                           "csrf_token": csrf_token(client, "/users")})
    assert response.status_code == 404


def test_htmx_gets_the_row_alone(app, client, auth):
    target = other_user(app)
    auth.login()
    token = csrf_token(client, "/users")
    response = client.post(f"/users/{target}/role", data={"role": "viewer", "csrf_token": token},
                           headers={"HX-Request": "true"})
    row = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in row and row.strip().startswith("<tr")
    assert f'id="user-{target}"' in row and '<option value="viewer" selected>' in row
    assert "is now a viewer" in response.headers["HX-Trigger"] and "HX-Request" in response.headers["Vary"]
    response = client.post(f"/users/{target}/active", data={"active": "false", "csrf_token": token},
                           headers={"HX-Request": "true"})
    assert "Reactivate" in response.get_data(as_text=True) and "<html" not in response.get_data(as_text=True)


def test_htmx_refusals_come_back_in_the_row(app, client, auth):
    auth.login()
    with app.app_context():
        me = db.session.scalars(select(User).filter_by(email="admin@example.com")).one().id
    response = client.post(f"/users/{me}/active", data={"active": "false", "csrf_token": csrf_token(client, "/users")},
                           headers={"HX-Request": "true"})
    row = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in row and "You cannot deactivate yourself" in row
    assert "HX-Trigger" not in response.headers


def test_boosted_forms_get_the_whole_page(app, client, auth):
    target = other_user(app)
    auth.login()
    response = client.post(f"/users/{target}/role", data={"role": "viewer", "csrf_token": csrf_token(client, "/users")},
                           headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert response.status_code == 303


def test_names_are_shown_as_text(app, client, auth):
    auth.login()
    data = {"name": "<script>alert(1)</script>", "email": "x@example.com", "role": "member",
            "password": "a long enough password", "csrf_token": csrf_token(client, "/users")}
    page = client.post("/users", data=data, follow_redirects=True).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
