"""Feedback: NPS categories and score, comment themes, the detractor follow-up task, and the /feedback page."""
import csv
import datetime as dt
import io

import pytest
from sqlalchemy import delete, select

from portal import clock
from portal.analytics.reports import Filters
from portal.customers import service
from portal.extensions import db
from portal.feedback import analysis, reports
from portal.feedback import service as feedback_service
from portal.models import Customer, Feedback, FeedbackDay, Intervention, User

from .conftest import csrf_token


@pytest.mark.parametrize("nps, expected", [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"),
                                           (9, "promoter"), (10, "promoter")])
def test_categories(nps, expected):
    assert analysis.category(nps) == expected


def test_nps_score():
    assert analysis.nps_score(5, 3, 2) == 30
    assert analysis.nps_score(0, 0, 3) == -100
    assert analysis.nps_score(0, 0, 0) is None


def test_themes_count_comments_not_words_and_never_bridge_a_stop_word():
    comments = ["The setup was slow, so slow", "Slow support answers", "Support answers were slow",
                "Setup of GitHub permissions", "GitHub permissions again"]
    found = dict(analysis.themes(comments))
    assert found["slow"] == 3                      # once per comment
    assert found["support answers"] == 2 and "answers slow" not in found
    assert found["github permissions"] == 2 and "github" not in found and "permissions" not in found
    assert found["setup"] == 2 and "the" not in found and "was" not in found
    assert list(found)[0] == "slow"
    repeated = dict(analysis.themes(comments * 3 + ["slow"]))  # each copy of a comment counts
    assert all(repeated[phrase] == count * 3 + (phrase == "slow") for phrase, count in found.items())
    assert repeated["slow support"] == 3  # now mentioned by two comments or more


def add(number, owner_id=None, cohort="Beta"):
    customer = service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                     "github_username": f"org-{number}", "cohort": cohort}, actor="test")
    customer.owner_id = owner_id
    return customer


def test_a_detractor_gets_one_follow_up_task_for_the_owner_due_tomorrow(ctx):
    owner = User(email="o@example.com", name="Olive Owner", role="member", password_hash="x")
    db.session.add(owner)
    db.session.flush()
    customer = add(1, owner.id)
    feedback_service.record(customer, {"nps": 3, "comment": "Too many rejected PRs", "source": "survey"}, "test")
    feedback_service.record(customer, {"nps": 2, "source": "call"}, "test")   # the first task is still open
    feedback_service.record(customer, {"nps": 9, "source": "call"}, "test")
    db.session.commit()
    [task] = db.session.scalars(select(Intervention)).all()
    assert (task.kind, task.trigger, task.assignee_id, task.due_date) == ("task", "rule", owner.id,
                                                                         clock.today() + dt.timedelta(days=1))
    assert "Too many rejected PRs" in task.body
    task.status = "snoozed"  # snoozed is still pending: no second task (the database would refuse it)
    feedback_service.record(customer, {"nps": 2, "source": "call"}, "test")
    task.status = "done"
    feedback_service.record(customer, {"nps": 1, "source": "call"}, "test")
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(Intervention)) == 2


def test_the_customer_page_form_records_feedback_and_its_follow_up(app, client, auth):
    with app.app_context():
        add(1)
        db.session.commit()
    auth.login("member")
    response = client.post("/customers/c1001/feedback", data={"nps": "4", "source": "call", "comment": "meh",
                                                               "csrf_token": csrf_token(client, "/customers")})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Intervention.title)) == "Follow up on NPS 4 (detractor)"


def test_tables_by_month_cohort_owner_csat_and_themes(ctx):
    owner = User(email="o@example.com", name="Olive Owner", role="member", password_hash="x")
    db.session.add(owner)
    db.session.flush()
    vip, beta = add(1, owner.id, "VIP"), add(2, None, "Beta")
    october, november = dt.datetime(2026, 10, 10, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 3, tzinfo=dt.timezone.utc)
    for customer, nps, csat, comment, at in ((vip, 10, 5, "Fast fixes", october), (vip, 9, None, "fast fixes again", november),
                                             (beta, 3, 2, "slow reviews", november), (beta, 7, 4, "", november),
                                             (beta, None, 3, "slow", november)):
        db.session.add(Feedback(customer_id=customer.id, nps=nps, csat=csat, comment=comment, source="call", created_at=at))
    db.session.commit()
    tables = reports.tables(Filters(dt.date(2026, 10, 1), dt.date(2026, 11, 30)))
    assert tables["nps_by_month"].rows == [["2026-10", 1, 1, 0, 0, 100], ["2026-11", 3, 1, 1, 1, 0]]
    assert tables["nps_by_cohort"].rows == [["Beta", 2, 0, 1, 1, -50], ["VIP", 2, 2, 0, 0, 100]]
    assert tables["nps_by_owner"].rows == [["(nobody)", 2, 0, 1, 1, -50], ["Olive Owner", 2, 2, 0, 0, 100]]
    assert tables["csat_by_month"].rows == [["2026-10", 1, 5.0], ["2026-11", 3, 3.0]]
    assert tables["themes"].rows[:2] == [["fast fixes", 2, 50], ["slow", 2, 50]]
    assert tables["detractor_themes"].rows == [["reviews", 1, 100], ["slow", 1, 100]]
    only_vip = reports.tables(Filters(dt.date(2026, 10, 1), dt.date(2026, 11, 30), cohort="VIP"))
    assert [row[0] for row in only_vip["nps_by_cohort"].rows] == ["VIP"]
    assert reports.tables(Filters(dt.date(2026, 11, 1), dt.date(2026, 11, 30), owner=str(owner.id)))[
        "nps_by_month"].rows == [["2026-11", 1, 1, 0, 0, 100]]


def test_page_csv_access_and_escaping(app, client, auth):
    assert client.get("/feedback").status_code == 302
    with app.app_context():
        customer = add(1, cohort="<script>c</script>")
        db.session.add(Feedback(customer_id=customer.id, nps=2, comment="<img src=x onerror=alert(1)> broken setup",
                                source="call", created_at=dt.datetime.now(dt.timezone.utc)))
        db.session.commit()
    auth.login("viewer")
    page = client.get("/feedback")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-chart="chart-nps"' in html
    assert "<script>c</script>" not in html and "&lt;script&gt;c&lt;/script&gt;" in html and "<img src=x" not in html
    rows = list(csv.reader(io.StringIO(client.get("/feedback/nps_by_cohort.csv").get_data(as_text=True))))
    assert rows == [["Cohort", "Responses", "Promoters", "Passives", "Detractors", "NPS"],
                    ["<script>c</script>", "1", "0", "0", "1", "-100"]]
    assert client.get("/feedback/passwords.csv").status_code == 404
    page = client.get("/feedback?start=nope").get_data(as_text=True)
    assert 'id="a-start-error"' in page and 'aria-describedby="a-start-error"' in page


@pytest.mark.parametrize("first_window_days", [1, 7])
def test_themes_read_only_the_latest_comments_and_say_so(ctx, monkeypatch, first_window_days):
    monkeypatch.setattr(reports, "THEMES_COMMENTS", 2)
    monkeypatch.setattr(reports, "FIRST_WINDOW_DAYS", first_window_days)
    customer = add(1)
    for day, nps, comment in ((1, 2, "old setup pain"), (20, 3, "slow reviews"), (25, 9, "slow reviews"),
                              (25, 10, ""), (28, 8, "fast fixes")):
        db.session.add(Feedback(customer_id=customer.id, nps=nps, comment=comment, source="call",
                                created_at=dt.datetime(2026, 11, day, 12, tzinfo=dt.timezone.utc)))
    db.session.commit()
    tables = reports.tables(Filters(dt.date(2026, 11, 1), dt.date(2026, 11, 30)))
    assert tables["themes"].title == "Themes of the latest 2 comments"
    assert [row[0] for row in tables["themes"].rows] == ["fast", "fixes", "reviews", "slow"]
    assert tables["detractor_themes"].title == "Themes of detractors' comments among the latest 2"
    assert tables["detractor_themes"].rows == []      # the detractor's comment is the third latest
    assert tables["nps_by_month"].rows == [["2026-11", 5, 2, 1, 2, 0]]   # the counts take every answer
    every = reports.tables(Filters(dt.date(2026, 11, 1), dt.date(2026, 11, 22)))
    assert every["themes"].title == "Themes of every comment"
    assert [row[0] for row in every["detractor_themes"].rows] == ["old", "pain", "reviews", "setup", "slow"]


def test_months_are_utc_months_on_either_database(ctx):
    customer = add(1)
    for at in (dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.timezone.utc),
               dt.datetime(2026, 11, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))):  # 22:30 UTC on 31 October
        db.session.add(Feedback(customer_id=customer.id, nps=10, csat=4, source="call", created_at=at))
    db.session.commit()
    tables = reports.tables(Filters(dt.date(2026, 10, 1), dt.date(2026, 11, 30)))
    assert tables["nps_by_month"].rows == [["2026-10", 2, 2, 0, 0, 100]]
    assert tables["csat_by_month"].rows == [["2026-10", 2, 4.0]]


def rollup() -> dict[tuple, tuple]:
    rows = db.session.execute(select(FeedbackDay)).scalars()
    return {(row.day, row.cohort, row.owner_key): counts for row in rows
            if any(counts := (row.promoters, row.passives, row.detractors, row.csat_answers, row.csat_sum))}


def counted_from_feedback() -> dict[tuple, tuple]:
    """What feedback_days should hold: every answer counted under its customer's cohort and owner of now."""
    expected: dict[tuple, list[int]] = {}
    answers = select(Feedback, Customer).join(Customer, Customer.id == Feedback.customer_id)
    for item, customer in db.session.execute(answers):
        counts = expected.setdefault((item.created_at.astimezone(dt.timezone.utc).date(), customer.cohort,
                                      customer.owner_id or 0), [0, 0, 0, 0, 0])
        if item.nps is not None:
            counts[("promoter", "passive", "detractor").index(analysis.category(item.nps))] += 1
        if item.csat is not None:
            counts[3] += 1
            counts[4] += item.csat
    return {key: tuple(counts) for key, counts in expected.items() if any(counts)}


def test_the_daily_rollup_follows_every_change_to_feedback_and_customers(ctx):
    owner, other = (User(email=f"{name}@example.com", name=name, role="member", password_hash="x")
                    for name in ("olive", "oscar"))
    db.session.add_all([owner, other])
    db.session.flush()
    first, second = add(1, owner.id, "VIP"), add(2, None, "Beta")
    late = dt.datetime(2026, 11, 3, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # 4 November in UTC
    for customer, nps, csat, at in ((first, 10, 5, late), (first, 3, None, late), (second, 8, 2, late),
                                    (second, None, 4, late - dt.timedelta(days=3))):
        db.session.add(Feedback(customer_id=customer.id, nps=nps, csat=csat, source="call", created_at=at))
    db.session.commit()
    assert rollup() == counted_from_feedback() and (dt.date(2026, 11, 4), "VIP", owner.id) in rollup()
    answer = db.session.scalars(select(Feedback).where(Feedback.nps == 3)).one()
    answer.nps, answer.created_at = 9, late - dt.timedelta(days=10)
    db.session.commit()
    assert rollup() == counted_from_feedback()
    first.cohort, second.owner_id = "Gamma", other.id
    db.session.commit()
    assert rollup() == counted_from_feedback() and {key[1] for key in rollup()} == {"Gamma", "Beta"}
    db.session.execute(delete(User).where(User.id == other.id))  # the database sets its customers' owner to none
    db.session.commit()
    assert rollup() == counted_from_feedback() and {key[2] for key in rollup()} == {owner.id, 0}
    db.session.execute(delete(Feedback).where(Feedback.csat == 5))
    db.session.execute(delete(Customer).where(Customer.id == second.id))  # its answers go with it
    db.session.commit()
    db.session.expire_all()
    assert rollup() == counted_from_feedback() and len(rollup()) == 1
