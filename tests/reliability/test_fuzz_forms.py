"""Every form POST of the URL map, fed generated hostile values as a signed-in admin with a valid CSRF token:
never a 500, and a refused request (4xx) changes nothing in the database.

The fields tried are every form field the portal has (its WTForms classes and the names its templates post),
with values a person or a script could send: numbers past any column, Unicode digits, far-off dates, formula
cells, long text, control characters, empty and blank. The webhooks have their own fuzzers
(tests/test_integrations.py, tests/test_email_events.py): they take signed bodies, not forms.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings, strategies as st
from wtforms.fields.core import UnboundField
from portal.health import metrics
from portal.customers import service as customers
from portal.extensions import db

from ..conftest import csrf_token
from ..test_transfer import snapshot
from .test_access import NO_CSRF

ROOT = Path(__file__).resolve().parents[2]
# Sign-out ends the session the fuzzing runs in.
SKIPPED = NO_CSRF | {"auth.logout", "auth.logout_everywhere"}
PATH_VALUES = {
    "customer_id": ["c1001", "c1002", "c9999", "c99999999999999999999", "c²", "x"],
    "step": [*metrics.STEPS, "nope", ""],
    "field": ["organization", "cohort", "industry", "team_size", "owner", "status", "email", "nope"],
    "token": ["not-a-token", "x" * 500],
    "name": ["no-such-job"],  # a real job would start running for real
}
INTEGERS = [1, 2, 3, 2147483647]


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def field_names() -> list[str]:
    import portal  # noqa: F401  (the app's modules define the forms)

    names = {name for form in subclasses(FlaskForm) for klass in form.__mro__
             for name, value in vars(klass).items() if isinstance(value, UnboundField)}
    for template in (ROOT / "templates").rglob("*.html"):
        names |= set(re.findall(r'name="([a-z_]+)"', template.read_text()))
    return sorted(names - {"csrf_token", "viewport"})


HOSTILE = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "1", "10", "101", "2147483648", "9" * 30, "1" * 5000, "1.5", "1e999", "NaN",
                     "²", "٣", "true", "false", "on", "1900-01-01", "2283-01-01", "9999-12-31", "2026-02-30",
                     "=HYPERLINK(\"http://evil.example/\",\"x\")", "+1", "@SUM(A1)", "<script>x</script>",
                     "admin", "member", "viewer", "churned", "active", "healthy", "at_risk", "Beta", "\x00",
                     "a\x00b", "\u202e", "\ud7ff", "x" * 20_000, "c1001", "c1002", "u1", "owner", "note", "task"]),
    st.text(max_size=40),
    st.integers(-(2**70), 2**70).map(str),
)


def signed_in_once(app, auth, role: str) -> None:
    """A customer and a signed-in client, made by the first example: the examples share the test's app and client."""
    if getattr(auth, "signed_in", False):
        return
    with app.app_context():
        customers.add_customer({"email": "bob@example.com", "organization": "Bob", "github_username": "bob"}, "test")
        db.session.commit()
    auth.login(role)
    auth.signed_in = True


def post_routes(app) -> list:
    return sorted((rule for rule in app.url_map.iter_rules()
                   if "POST" in rule.methods and rule.endpoint not in SKIPPED), key=lambda rule: rule.rule)


@pytest.fixture
def admin(app, auth):
    with app.app_context():
        for number in (1, 2):
            customers.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                    "github_username": f"org-{number}"}, "test")
        db.session.commit()
    auth.login("admin")
    return auth.client


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_no_form_answers_500_and_a_refused_one_changes_nothing(app, admin, data):
    rule = data.draw(st.sampled_from(post_routes(app)), label="route")
    values = {name: data.draw(st.sampled_from(PATH_VALUES.get(name, ["x"])) if name not in rule._converters
                              or type(rule._converters[name]).__name__ != "DatabaseKeyConverter"
                              else st.sampled_from(INTEGERS), label=name) for name in rule.arguments}
    path = rule.build(values, append_unknown=False)[1]
    form = data.draw(st.dictionaries(st.sampled_from(field_names()), HOSTILE, max_size=6), label="form")
    token = csrf_token(admin, "/customers")
    with app.app_context():
        before = snapshot()
    response = admin.post(path, data={**form, "csrf_token": token}, headers={"X-CSRFToken": token})
    assert response.status_code < 500, (path, form, response.status_code)
    if 400 <= response.status_code < 500:
        with app.app_context():
            assert snapshot() == before, (path, form, response.status_code)
