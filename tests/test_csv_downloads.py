"""Every CSV the portal serves neutralises text a spreadsheet would run as a formula, as the export does."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from portal import clock
from portal.health import snapshots
from portal.customers import service
from portal.extensions import db
from portal.models import Feedback, User
from portal.transfer.csvformat import cell

COHORT = '=HYPERLINK("http://evil.example/","x")'
INDUSTRY = "@SUM(1+1)*cmd|' /C calc'!A0"
OWNER = "+Mallory"
STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile(app):
    """A customer whose cohort, industry and owner are formulas, active this week, with an NPS answer."""
    with app.app_context():
        owner = User(email="m@example.com", name=OWNER, role="member", password_hash="x")
        db.session.add(owner)
        db.session.flush()
        today = clock.today()
        customer = service.add_customer({"email": "c@evil.example", "organization": "-Evil", "github_username": "evil",
                                         "cohort": COHORT, "industry": INDUSTRY}, "test",
                                        signup_date=today - dt.timedelta(days=3))
        customer.owner_id = owner.id
        service.set_step(customer, "welcome_email_sent", True, "test")
        service.record_engagement(customer, {"issues_tagged": 2, "prs_generated": 1}, "test", today)
        db.session.add(Feedback(customer_id=customer.id, nps=2, csat=1, comment="=cmd broken setup", source="call",
                                created_at=clock.now()))
        snapshots.recalculate()
        db.session.commit()
    return app


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


def assert_no_formula(rows: list[list[str]], *expected: str) -> None:
    cells = [value for row in rows for value in row]
    live = [value for value in cells if value.startswith(STARTS) and not value.lstrip("-").replace(".", "").isdigit()]
    assert live == []
    for text in expected:
        assert "'" + text in cells, text


@pytest.mark.parametrize("name, by, expected", [
    ("funnel", "", (COHORT,)), ("retention", "", ()), ("migration", "", ()),
    ("trends", "cohort", (COHORT,)), ("trends", "industry", (INDUSTRY,)),
])
def test_analytics_downloads_neutralise_formulas(hostile, client, auth, name, by, expected):
    auth.login(role="viewer")
    rows = rows_of(client.get(f"/analytics/{name}.csv" + (f"?by={by}" if by else "")))
    assert len(rows) > 1
    assert_no_formula(rows, *expected)


@pytest.mark.parametrize("name, expected", [
    ("nps_by_month", ()), ("nps_by_cohort", (COHORT,)), ("nps_by_owner", (OWNER,)), ("csat_by_month", ()),
    ("themes", ()), ("detractor_themes", ()),
])
def test_feedback_downloads_neutralise_formulas(hostile, client, auth, name, expected):
    auth.login(role="viewer")
    rows = rows_of(client.get(f"/feedback/{name}.csv"))
    assert len(rows) > 1
    assert_no_formula(rows, *expected)


def test_negative_numbers_stay_numbers(hostile, client, auth):
    auth.login(role="viewer")
    [header, row] = rows_of(client.get("/feedback/nps_by_cohort.csv"))
    assert header == ["Cohort", "Responses", "Promoters", "Passives", "Detractors", "NPS"]
    assert row == ["'" + COHORT, "1", "0", "0", "1", "-100"]


@pytest.mark.parametrize("value, text", [(-100, "-100"), (-2.5, "-2.5"), ("-100", "'-100"), ("\tx", "'\tx"),
                                         ("\rx", "'\rx")])
def test_cell_neutralises_text_not_numbers(value, text):
    assert cell(value) == text
