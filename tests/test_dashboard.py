"""The dashboard's KPIs, from the same summaries the CLI reports."""
import datetime as dt

from portal import analytics
from portal.customers import service
from portal.extensions import db
from portal.metrics import STEPS


def add(number, steps=0, status="active"):
    customer = service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                     "github_username": f"org-{number}"}, actor="test",
                                    signup_date=dt.date.today() - dt.timedelta(days=10), status=status)
    for step in STEPS[:steps]:
        service.set_step(customer, step, True, actor="test")
    return customer


def test_dashboard_figures(ctx):
    add(1, steps=5)
    add(2, steps=2)
    add(3)
    db.session.commit()
    board = analytics.dashboard()
    assert (board.onboarding.total, board.onboarding.completed, board.onboarding.completion_rate) == (3, 1, 33)
    assert board.onboarding.average_days_to_complete == 10.0
    assert board.stages == {"new_signup": 1, "onboarding": 1, "initial_adoption": 0, "regular_usage": 1, "churned": 0}
    # complete onboarding alone is 30: every one of them is at risk
    assert board.at_risk == 3 and len(board.at_risk_customers) == 3
    assert sum(board.bands.values()) == 3


def test_dashboard_page_shows_kpis_and_at_risk_list(ctx, client, auth):
    add(1, steps=5)
    add(2, steps=1)
    db.session.commit()
    auth.login()
    page = client.get("/").get_data(as_text=True)
    for text in ("Customers", "Completion rate", "50%", "At risk (2)", "Org 2", "First PR generated"):
        assert text in page


def test_empty_dashboard(client, auth):
    auth.login()
    page = client.get("/").get_data(as_text=True)
    assert "Nobody is at risk today." in page and "No open blockers." in page
