"""The analytics page: every figure against a small hand-computed book of customers, filters, CSVs, access."""
import csv
import datetime as dt
import io
import time

import pytest
from sqlalchemy import delete, func, select, update

from portal.analytics import reports
from portal.customers import service
from portal.extensions import db
from portal.health import rollups
from portal.models import Customer, Engagement, EngagementTotal, HealthScore, User

from .test_analytics_rollups import counted_days

END = dt.date(2026, 11, 25)  # a Wednesday
MONDAY = dt.date(2026, 10, 5)


def add(number, signup, cohort="Beta", industry="SaaS", team_size="5", owner=None):
    customer = service.add_customer(
        {"email": f"c{number}@example.com", "organization": f"Org {number}", "github_username": f"org-{number}",
         "cohort": cohort, "industry": industry, "team_size": team_size}, actor="test", signup_date=signup)
    customer.owner_id = owner
    return customer


def active(customer, *days, **counts):
    for day in days:
        service.record_engagement(customer, {"issues_tagged": 1, **counts}, actor="test", day=day)


def at(day, hour=12):
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc)


def snapshot(customer, day, status, score=50):
    db.session.add(HealthScore(customer_id=customer.id, date=day, score=score, status=status, stage="onboarding",
                               onboarding_component=0, activity_component=0, success_component=0, volume_component=0,
                               onboarding_percent=0, days_active=0, success_rate=0, prs_generated=0, prs_merged=0,
                               settings_version=1))


def filters(**changes):
    return reports.Filters(start=changes.pop("start", MONDAY), end=changes.pop("end", END), **changes)


# --- cohort retention --------------------------------------------------------------------------------------

def test_retention_counts_each_customer_in_the_weeks_after_its_own_signup(ctx):
    a = add(1, MONDAY)                               # week 0 = Oct 5..11, week 1 = Oct 12..18
    b = add(2, MONDAY + dt.timedelta(days=3))        # same cohort week; its week 0 = Oct 8..14
    c = add(3, MONDAY + dt.timedelta(days=7))        # next cohort week
    add(4, MONDAY + dt.timedelta(days=8))            # never active
    active(a, MONDAY, MONDAY + dt.timedelta(days=1), MONDAY + dt.timedelta(days=8))  # weeks 0 and 1
    active(b, MONDAY + dt.timedelta(days=11))        # its week 1 (day 8 after its signup)
    active(c, MONDAY + dt.timedelta(days=7 + 14))    # week 2
    active(a, MONDAY - dt.timedelta(days=1))         # before signup: never counted
    db.session.commit()
    table = reports.retention(filters())
    first, second = table.rows
    assert first[:5] == [MONDAY.isoformat(), 2, 50, 100, 0]
    assert second[:5] == [(MONDAY + dt.timedelta(days=7)).isoformat(), 2, 0, 0, 50]
    # Oct 5 + 7 x 7 = Nov 23 has begun by Nov 25; Oct 5 + 7 x 8 = Nov 30 has not: shown empty, not 0%.
    assert first[2 + 7] == 0 and first[2 + 8] is None
    assert second[2 + 7] is None
    assert reports.retention_curve(table)[:3] == [25, 50, 25]


def test_retention_reads_each_customers_first_twelve_weeks_only(ctx):
    """Day 83 after signup is week 11, day 84 is past the last week; a day after the end is not counted."""
    a, b = add(1, MONDAY), add(2, MONDAY, cohort="GA")
    active(a, MONDAY + dt.timedelta(days=83), MONDAY + dt.timedelta(days=84), MONDAY + dt.timedelta(days=80))
    active(b, MONDAY + dt.timedelta(days=84), MONDAY + dt.timedelta(days=7))
    db.session.commit()
    end = MONDAY + dt.timedelta(days=90)
    row, = reports.retention(filters(end=end)).rows
    assert row[1:] == [2, 0, 50, *([0] * 9), 50]
    assert reports.retention(filters(end=end, cohort="GA")).rows[0][1:4] == [1, 0, 100]
    early, = reports.retention(filters(end=MONDAY + dt.timedelta(days=79))).rows
    assert early[-1] == 0


def test_retention_needs_activity_not_an_empty_row(ctx):
    a = add(1, MONDAY)
    service.record_engagement(a, {"issues_tagged": 0}, actor="test", day=MONDAY)
    db.session.commit()
    assert reports.retention(filters()).rows[0][2] == 0


# --- funnel per cohort -------------------------------------------------------------------------------------

def test_funnel_shares_and_median_days_between_steps(ctx):
    vip = [add(number, MONDAY, cohort="VIP") for number in (1, 2, 3)]
    ga = add(4, MONDAY, cohort="GA")
    add(5, MONDAY - dt.timedelta(days=30), cohort="GA")  # signed up before the period: left out
    for customer, days in zip(vip, ((1, 2, 4), (3, 3), (2,))):
        elapsed = 0
        for step, gap in zip(reports.metrics.STEPS, days):
            elapsed += gap
            service.set_step(customer, step, True, actor="test", when=at(MONDAY + dt.timedelta(days=elapsed)))
    service.set_step(ga, "welcome_email_sent", True, actor="test")
    db.session.commit()
    rows = {row[0]: row for row in reports.funnel(filters()).rows}
    assert rows["VIP"][1:7] == [3, 100, 66, 33, 0, 0]
    # signup -> welcome: 1, 3, 2 days; welcome -> account: 2, 3; account -> installed: 4
    assert rows["VIP"][7:10] == [2, 2.5, 4]
    assert rows["VIP"][10:] == [None, None]
    assert rows["GA"][1:3] == [1, 100]


# --- band migration ----------------------------------------------------------------------------------------

def test_band_migration_matrix_and_the_customers_behind_a_cell(ctx, client, auth):
    start = END - dt.timedelta(days=30)
    a, b, c, d = (add(number, MONDAY) for number in (1, 2, 3, 4))
    snapshot(a, start, "healthy"), snapshot(a, END, "at_risk")
    snapshot(b, start, "healthy"), snapshot(b, END, "at_risk")
    snapshot(c, start, "champion"), snapshot(c, END, "champion")
    snapshot(d, END, "healthy")  # no snapshot 30 days before
    snapshot(c, start + dt.timedelta(days=1), "at_risk")  # other days do not count
    add(5, MONDAY)  # no snapshot on either day
    snapshot(add(6, MONDAY), start, "needs_attention")  # none on the end day
    db.session.commit()
    rollups.rebuild()  # the snapshots were written here, not by a recalculation: their rollups counted afresh
    db.session.commit()
    assert reports.migration_counted(END) is not None  # every customer: read from the two days' rollups
    table = reports.migration(filters())
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["Healthy"] == [0, 0, 0, 2, 0, 2]
    assert rows["Champion"] == [1, 0, 0, 0, 0, 1]
    assert rows["Needs attention"] == [0, 0, 0, 0, 1, 1]
    assert rows["No snapshot"] == [0, 1, 0, 0, 1, 2]
    # Some customers (a filter, here matching all of them): from their snapshots, the same matrix.
    assert reports.migration(filters(cohort="Beta")).rows == table.rows
    auth.login("viewer")
    page = client.get(f"/analytics?end={END}").get_data(as_text=True)
    assert f"/analytics/migration?start={END - dt.timedelta(days=83)}&amp;end={END}&amp;from=healthy&amp;to=at_risk" in page
    listing = client.get(f"/analytics/migration?end={END}&from=healthy&to=at_risk").get_data(as_text=True)
    assert "Org 1" in listing and "Org 2" in listing and "Org 3" not in listing
    for query in ("from=healthy&to=purple", f"end={END}"):  # a band typed wrong, or none: back to the table
        sent = client.get(f"/analytics/migration?{query}")
        assert sent.status_code == 303 and sent.headers["Location"].endswith("#migration-heading")
    assert f"end={END}" in client.get(f"/analytics/migration?end={END}").headers["Location"]
    back = client.get("/analytics/migration", follow_redirects=True).get_data(as_text=True)
    assert "Choose a count in the band migration table" in back


# --- weekly trends -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("start", [MONDAY, END - dt.timedelta(days=364)], ids=["weeks", "a year"])
def test_weekly_trends_overall_and_by_group(ctx, start):
    """Over a year SQLite reads the days another way (reports.engagement_day): the same figures."""
    small = add(1, MONDAY - dt.timedelta(days=400), cohort="VIP", team_size="3")
    large = add(2, MONDAY, cohort="GA", team_size="60")
    active(small, start - dt.timedelta(days=1), prs_generated=5)  # the day before the period: not counted
    active(small, MONDAY, prs_generated=3, prs_merged=2)
    active(small, MONDAY + dt.timedelta(days=6), prs_generated=1, prs_merged=1)
    active(large, MONDAY + dt.timedelta(days=2), prs_generated=2, prs_merged=0)
    active(large, MONDAY + dt.timedelta(days=7), prs_generated=0)
    db.session.commit()
    overall = reports.trends(filters(start=start))
    assert overall.rows == [[MONDAY.isoformat(), "All customers", 3, 6, 3, 50],
                            [(MONDAY + dt.timedelta(days=7)).isoformat(), "All customers", 1, 0, 0, 0]]
    by_size = reports.trends(filters(start=start), "team_size")
    assert [row[1:] for row in by_size.rows if row[0] == MONDAY.isoformat()] == [["1-5", 2, 4, 3, 75],
                                                                                 ["51+", 1, 2, 0, 0]]
    by_cohort = reports.trends(filters(start=start, cohort="VIP"), "cohort")
    assert [row[1] for row in by_cohort.rows] == ["VIP"]


def totals_are_a_fresh_count(first, last):
    return reports.daily_totals(first, last) == counted_days(first, last)


def test_daily_totals_follow_every_write(ctx):
    """Each day's totals are read from engagement_totals, which the triggers keep: an engagement recorded (today's
    too), a row changed, moved or deleted, a customer deleted with its engagement: each shows on the next view."""
    a, b = add(1, MONDAY), add(2, MONDAY)
    active(a, MONDAY, MONDAY + dt.timedelta(days=1), prs_generated=2, prs_merged=1)
    active(b, MONDAY + dt.timedelta(days=8), prs_generated=1)
    db.session.commit()
    first = reports.trends(filters())
    assert first.rows == [[MONDAY.isoformat(), "All customers", 2, 4, 2, 50],
                          [(MONDAY + dt.timedelta(days=7)).isoformat(), "All customers", 1, 1, 0, 0]]
    # Read, not counted: what engagement_totals holds is what the report shows.
    db.session.execute(update(EngagementTotal).where(EngagementTotal.day == MONDAY,
                                                     EngagementTotal.shard == a.id % EngagementTotal.SHARDS)
                       .values(issues_tagged=40))
    db.session.commit()
    assert reports.trends(filters()).rows[0][2] == 41
    db.session.execute(update(EngagementTotal).where(EngagementTotal.day == MONDAY,
                                                     EngagementTotal.shard == a.id % EngagementTotal.SHARDS)
                       .values(issues_tagged=1))
    today = dt.datetime.now(dt.timezone.utc).date()
    changes = [
        lambda: active(a, MONDAY, prs_merged=1),
        lambda: service.add_counts(a.id, {"issues_tagged": 2}, "test", today),
        lambda: db.session.execute(update(Engagement).where(Engagement.customer_id == b.id).values(prs_generated=7)),
        lambda: db.session.execute(update(Engagement).where(Engagement.customer_id == b.id)
                                   .values(date=MONDAY + dt.timedelta(days=2))),
        lambda: db.session.execute(update(Engagement).where(Engagement.customer_id == a.id, Engagement.date == today)
                                   .values(customer_id=b.id, issues_tagged=0)),
        lambda: db.session.execute(delete(Engagement).where(Engagement.date == MONDAY + dt.timedelta(days=1))),
        lambda: db.session.execute(delete(Customer).where(Customer.id == b.id)),
    ]
    for change in changes:
        change()
        db.session.commit()
        assert totals_are_a_fresh_count(MONDAY, today)
    assert reports.trends(filters()).rows == [[MONDAY.isoformat(), "All customers", 2, 2, 2, 100]]
    assert list(reports.daily_totals(MONDAY, today)) == [MONDAY]


def test_a_write_uncommitted_while_the_page_reads_is_neither_waited_for_nor_lost(ctx):
    """Another connection's write, uncommitted while the page reads (on PostgreSQL it holds its shard's row of the
    day's totals): the page does not wait for it and does not count it; once committed, it shows."""
    a = add(1, MONDAY)
    active(a, MONDAY)
    db.session.commit()
    with db.engine.connect() as other:
        other.execute(Engagement.__table__.insert().values(customer_id=a.id, date=MONDAY + dt.timedelta(days=3),
                                                           issues_tagged=5, prs_generated=0, prs_merged=0,
                                                           prs_rejected=0, support_requests=0))
        started = time.monotonic()
        assert reports.trends(filters()).rows[0][2] == 1
        assert time.monotonic() - started < 2
        db.session.commit()
        other.commit()
    assert reports.trends(filters()).rows[0][2] == 6
    assert totals_are_a_fresh_count(MONDAY, END)


def test_filters_narrow_every_report(ctx):
    owner = User(email="o@example.com", name="Olive Owner", role="member", password_hash="x")
    db.session.add(owner)
    db.session.flush()
    mine = add(1, MONDAY, industry="Fintech", owner=owner.id)
    add(2, MONDAY, industry="Retail")
    active(mine, MONDAY)
    db.session.commit()
    for narrowed in (filters(owner=str(owner.id)), filters(industry="Fintech")):
        assert reports.retention(narrowed).rows[0][1] == 1
        assert reports.funnel(narrowed).rows[0][1] == 1
        assert reports.migration(narrowed).rows[-1][-1] == 1
    assert reports.retention(filters(owner="none")).rows[0][1] == 1


# --- the page and its downloads ----------------------------------------------------------------------------

def test_page_and_csv_downloads_agree(ctx, client, auth):
    a = add(1, MONDAY)
    active(a, MONDAY, prs_generated=2, prs_merged=1)
    db.session.commit()
    auth.login("viewer")
    query = f"start={MONDAY}&end={END}&by=cohort"
    page = client.get(f"/analytics?{query}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for chart in ("retention", "funnel", "success", "issues", "prs"):
        assert f'data-chart="chart-{chart}"' in html
    for name, report in (("retention", reports.retention), ("funnel", reports.funnel),
                         ("migration", reports.migration)):
        assert f"/analytics/{name}.csv?" in html
        download = client.get(f"/analytics/{name}.csv?{query}")
        assert download.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
        table = report(filters(start=MONDAY))
        assert rows[0] == table.headers
        assert rows[1:] == [["" if value is None else str(value) for value in row] for row in table.rows]
    trends = list(csv.reader(io.StringIO(client.get(f"/analytics/trends.csv?{query}").get_data(as_text=True))))
    assert trends[1] == [MONDAY.isoformat(), "Beta", "1", "2", "1", "50"]
    assert client.get("/analytics/nothing.csv").status_code == 404


@pytest.mark.parametrize("query, field", [("start=yesterday", "start"), ("end=2026-13-01", "end"),
                                          ("start=2026-12-01&end=2026-11-01", "start"), ("start=1990-01-01", "start"),
                                          ("end=0001-01-01", "end"), ("start=0001-01-01&end=0001-01-05", "end"),
                                          ("end=9999-12-31", "end"), ("end=0001100100", "end")])
def test_bad_dates_are_reported_and_the_defaults_used(client, auth, query, field):
    auth.login()
    page = client.get(f"/analytics?{query}")
    assert page.status_code == 200
    assert f'id="a-{field}-error"' in page.get_data(as_text=True)
    for download in ("/analytics/retention.csv", "/analytics/migration", "/feedback", "/feedback/nps_by_month.csv"):
        assert client.get(f"{download}?{query}").status_code in (200, 303), download


def test_page_needs_sign_in_and_escapes_what_users_typed(ctx, client, auth):
    assert client.get("/analytics").status_code == 302
    assert client.get("/analytics/retention.csv").status_code == 302
    add(1, MONDAY, cohort="<script>x</script>", industry='"><img src=x onerror=alert(1)>')
    db.session.commit()
    auth.login("viewer")
    html = client.get(f"/analytics?start={MONDAY}&end={END}&by=industry").get_data(as_text=True)
    assert "<script>x</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
