"""Sentiment and band overrides: required reason and expiry, audited, shown beside the computed score, and
never dropped by a recalculation."""
import datetime as dt

import pytest
from sqlalchemy import select

from portal import clock
from portal.health import snapshots
from portal.customers import service
from portal.extensions import db
from portal.models import Assessment, AuditLog

from .conftest import csrf_token


@pytest.fixture
def customer(app):
    with app.app_context():
        added = service.add_customer({"email": "a@example.com", "organization": "Acme", "github_username": "acme"},
                                     actor="test")
        snapshots.recalculate([added.id])
        db.session.commit()
        return added.public_id


def post(client, path, **form):
    return client.post(path, data={**form, "csrf_token": csrf_token(client, "/customers")})


def later(days):
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def test_an_override_holds_through_recalculation_and_shows_beside_the_score(app, client, auth, customer):
    auth.login("member")
    response = post(client, f"/customers/{customer}/override", band="healthy", reason="Renewal signed", until=later(30))
    assert response.status_code == 200 and "Band overridden to" in response.get_data(as_text=True)
    with app.app_context():
        snapshots.recalculate()
        db.session.commit()
        record = db.session.get(Assessment, 1)
        assert (record.band_override, record.override_reason, record.override_by) == ("healthy", "Renewal signed", "Member User")
        audited = db.session.scalars(select(AuditLog.field).where(AuditLog.table_name == "assessments")).all()
        assert sorted(audited) == ["band_override", "override_reason", "override_until"]
    page = client.get(f"/customers/{customer}").get_data(as_text=True)
    assert "team says healthy" in page and "At risk" in page  # the computed band stays visible
    table = client.get("/customers").get_data(as_text=True)
    assert 'title="The team overrides the band to healthy"' in table


def test_an_override_ends_on_its_day_and_can_be_removed(app, client, auth, customer):
    with app.app_context():
        db.session.add(Assessment(customer_id=1, band_override="champion", override_reason="x",
                                  override_until=clock.today(), override_by="Ada"))
        db.session.commit()
        record = db.session.get(Assessment, 1)
        assert record.override_on(clock.today()) == "champion"
        assert record.override_on(clock.today() + dt.timedelta(days=1)) is None
    auth.login("member")
    response = post(client, f"/customers/{customer}/override", action="remove")
    assert "Band overridden" not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Assessment, 1).band_override is None


@pytest.mark.parametrize("form, message", [
    ({"band": "healthy", "reason": "", "until": later(5)}, "reason is required"),
    ({"band": "healthy", "reason": "ok", "until": ""}, "until must be a date"),
    ({"band": "healthy", "reason": "ok", "until": later(-1)}, "until must be between today"),
    ({"band": "healthy", "reason": "ok", "until": later(400)}, "until must be between today"),
    ({"band": "purple", "reason": "ok", "until": later(5)}, "band must be one of"),
    ({"band": "healthy", "reason": "x" * 501, "until": later(5)}, "reason is longer than 500"),
])
def test_a_bad_override_shows_its_error_and_saves_nothing(app, client, auth, customer, form, message):
    auth.login("member")
    response = post(client, f"/customers/{customer}/override", **form)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Assessment, 1) is None


def test_sentiment_is_saved_audited_and_checked(app, client, auth, customer):
    auth.login("member")
    assert post(client, f"/customers/{customer}/sentiment", sentiment="negative").status_code == 200
    assert post(client, f"/customers/{customer}/sentiment", sentiment="furious").status_code == 422
    with app.app_context():
        assert db.session.get(Assessment, 1).sentiment == "negative"
        assert db.session.scalar(select(AuditLog.new_value).where(AuditLog.field == "sentiment")) == "negative"
    page = client.get(f"/customers/{customer}").get_data(as_text=True)
    assert "Set by Member User" in page


def test_viewers_read_only_and_every_post_needs_the_token(app, client, auth, customer):
    auth.login("viewer")
    assert post(client, f"/customers/{customer}/sentiment", sentiment="positive").status_code == 403
    assert post(client, f"/customers/{customer}/override", band="healthy", reason="r", until=later(3)).status_code == 403
    assert 'id="override-band"' not in client.get(f"/customers/{customer}").get_data(as_text=True)
    auth.login("member")
    assert client.post(f"/customers/{customer}/sentiment", data={"sentiment": "positive"}).status_code == 400
    assert post(client, "/customers/c9999/sentiment", sentiment="positive").status_code == 404


def test_what_users_typed_is_escaped(app, client, auth, customer):
    auth.login("member")
    post(client, f"/customers/{customer}/override", band="healthy", reason='<script>x</script>"><img src=x>', until=later(3))
    page = client.get(f"/customers/{customer}").get_data(as_text=True)
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
