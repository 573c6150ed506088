"""What the database keeps for the analytics page (retention_days, funnel_days, engagement_totals) says what a count
of the engagement, the onboarding and the customers says, after any sequence of writes by any path: engagement
recorded, edited to nothing, moved to another day, deleted; onboarding steps done and undone; customers added,
deleted, moved to another cohort or given another signup date."""
from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask_migrate import upgrade
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import delete, func, select, text, update

from portal import sql
from portal.analytics import reports
from portal.customers import service
from portal.extensions import db
from portal.health.metrics import STEPS
from portal.models import Customer, Engagement, Feedback, FeedbackDay, Onboarding, RetentionDay

from .conftest import POSTGRES, clean, make_app

START = dt.date(2026, 9, 7)  # a Monday
END = START + dt.timedelta(days=83)
CUSTOMERS = 4
COUNTS = st.fixed_dictionaries({"issues_tagged": st.integers(0, 2), "prs_generated": st.integers(0, 2),
                                "support_requests": st.integers(0, 1)})

CHANGES = st.one_of(
    st.tuples(st.just("engagement"), st.integers(0, CUSTOMERS - 1), st.integers(-3, 90), COUNTS),
    st.tuples(st.just("emptied"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("moved"), st.integers(0, CUSTOMERS - 1), st.integers(-10, 10)),
    st.tuples(st.just("deleted"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("signup"), st.integers(0, CUSTOMERS - 1), st.integers(-20, 20)),
    st.tuples(st.just("customer_deleted"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("customer_added"), st.integers(0, 30)),
    st.tuples(st.just("step"), st.integers(0, CUSTOMERS - 1), st.sampled_from(STEPS), st.booleans()),
    st.tuples(st.just("cohort"), st.integers(0, CUSTOMERS - 1), st.sampled_from(["", "Beta", "GA"])),
    # As an import writes onboarding: several customers' rows in one statement, some of them as they were.
    st.tuples(st.just("onboarding_rows"), st.lists(st.tuples(st.integers(0, CUSTOMERS - 1), st.sampled_from(STEPS),
                                                             st.booleans()), min_size=1, max_size=4)),
)


def kept_retention() -> dict:
    return {(row.signup_day, row.week): row.customers for row in db.session.scalars(select(RetentionDay))
            if row.customers}


def counted_retention() -> dict:
    """The same counts from the customers and their engagement, in Python."""
    found: dict = {}
    customers = {customer.id: customer.signup_date for customer in db.session.scalars(select(Customer))}
    for signup in customers.values():
        found[(signup, RetentionDay.SIGNED_UP)] = found.get((signup, RetentionDay.SIGNED_UP), 0) + 1
    weeks = set()
    for row in db.session.scalars(select(Engagement)):
        offset = (row.date - customers[row.customer_id]).days
        if any(getattr(row, count) for count in Engagement.COUNTS) and 0 <= offset < 7 * reports.RETENTION_WEEKS:
            weeks.add((row.customer_id, offset // 7))
    for customer_id, week in weeks:
        key = (customers[customer_id], week)
        found[key] = found.get(key, 0) + 1
    return found


def normal(rows) -> list[tuple]:
    return sorted((tuple(None if value is None else (value if isinstance(value, str) else int(value)) for value in row)
                   for row in rows), key=repr)


def first_row(customer_id: int):
    return db.session.scalar(select(Engagement.id).where(Engagement.customer_id == customer_id)
                             .order_by(Engagement.date, Engagement.id).limit(1))


def add_customer(number: int, signup: dt.date) -> int:
    return service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                 "github_username": f"org-{number}"}, "test", signup_date=signup).id


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGES, max_size=14))
def test_any_sequence_of_writes_keeps_what_a_count_says(app, changes):
    clean(app)
    with app.app_context():
        ids = [add_customer(number, START + dt.timedelta(days=3 * number)) for number in range(CUSTOMERS)]
        db.session.commit()
        filters = reports.Filters(START, END)
        everyone = reports.Filters(START, END, cohort="Beta")  # the same customers, counted from their engagement
        for number, change in enumerate(changes):
            kind, *args = change
            customer_id = ids[args[0]] if kind not in ("customer_added", "onboarding_rows") else None
            if customer_id is not None and db.session.get(Customer, customer_id) is None:
                continue
            if kind == "engagement":
                customer = db.session.get(Customer, customer_id)
                service.add_counts(customer.id, args[2], "test", customer.signup_date + dt.timedelta(days=args[1]))
            elif kind == "emptied":
                db.session.execute(update(Engagement).where(Engagement.id == first_row(customer_id))
                                   .values(**{count: 0 for count in Engagement.COUNTS}))
            elif kind == "moved":
                row = db.session.get(Engagement, first_row(customer_id) or 0)
                if row is not None:
                    moved = row.date + dt.timedelta(days=args[1])
                    taken = db.session.scalar(select(func.count()).where(Engagement.customer_id == customer_id,
                                                                         Engagement.date == moved))
                    if not taken:
                        row.date = moved
            elif kind == "deleted":
                db.session.execute(delete(Engagement).where(Engagement.id == first_row(customer_id)))
            elif kind == "signup":
                customer = db.session.get(Customer, customer_id)
                customer.signup_date = customer.signup_date + dt.timedelta(days=args[1])
            elif kind == "customer_deleted":
                db.session.execute(delete(Customer).where(Customer.id == customer_id))
            elif kind == "customer_added":
                ids.append(add_customer(100 + number, START + dt.timedelta(days=args[0])))
            elif kind == "step":
                service.set_step(db.session.get(Customer, customer_id), args[1], args[2], "test")
            elif kind == "cohort":
                db.session.get(Customer, customer_id).cohort = args[1]
            elif kind == "onboarding_rows":
                rows = {}
                for index, step, done in args[0]:
                    onboarding = db.session.scalars(select(Onboarding).filter_by(customer_id=ids[index])).first()
                    if onboarding is not None:
                        row = rows.setdefault(onboarding.id, {"key": onboarding.id, **{
                            name: getattr(onboarding, name) for name in (*STEPS, *(f"{other}_at" for other in STEPS))}})
                        noon = dt.datetime.combine(START + dt.timedelta(days=5 + index), dt.time(12), dt.timezone.utc)
                        row[step], row[f"{step}_at"] = done, noon if done else None
                sql.update_by_id(Onboarding.__table__, list(rows.values()))
            db.session.commit()
            db.session.expire_all()
            assert kept_retention() == counted_retention()
            assert normal(reports.kept_funnel_counts(filters)) == normal(db.session.execute(reports.funnel_counts(filters)))
        for customer in db.session.scalars(select(Customer)):
            customer.cohort = "Beta"
        db.session.commit()
        if not reports.engaged_after(END):
            assert reports.retention(filters).rows == reports.retention(everyone).rows
        assert reports.funnel(filters).rows == reports.funnel(everyone).rows
        period = (START - dt.timedelta(days=30), END + dt.timedelta(days=30))
        assert reports.daily_totals(*period) == counted_days(*period)
        db.session.remove()


def counted_days(first: dt.date, last: dt.date) -> dict[dt.date, tuple[int, ...]]:
    """reports.daily_totals() as a count of the engagement table says it."""
    sums = (func.sum(getattr(Engagement, count)) for count in Engagement.COUNTS)
    query = (select(Engagement.date, func.count(), *sums).where(Engagement.date.between(first, last))
             .group_by(Engagement.date))
    return {day: tuple(int(value) for value in values) for day, *values in db.session.execute(query)}


def test_the_migrations_count_what_is_already_there(databases):
    """A portal upgraded with customers, onboarding and engagement in it: retention_days, funnel_days and
    engagement_totals start as a count says."""
    app = make_app(databases.new())
    try:
        with app.app_context():
            upgrade(revision="0020_feedback_days")
            with db.engine.begin() as connection:
                for number, signup in enumerate((START, START + dt.timedelta(days=9)), start=1):
                    connection.execute(text(
                        "INSERT INTO customers (email, organization, github_username, signup_date, status, cohort, "
                        "industry, team_size, created_at, updated_at) VALUES (:email, 'Org', :login, :signup, "
                        "'active', 'Beta', '', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                        {"email": f"m{number}@example.com", "login": f"m-{number}", "signup": signup})
                ids = connection.execute(text("SELECT id FROM customers ORDER BY id")).scalars().all()
                connection.execute(text(
                    "INSERT INTO onboarding (customer_id, welcome_email_sent, welcome_email_sent_at, account_created, "
                    "github_action_installed, first_issue_tagged, first_pr_generated, blocker_type, notes, updated_at) "
                    "VALUES (:id, :done, :at, false, false, false, false, 'none', '', CURRENT_TIMESTAMP)"),
                    [{"id": ids[0], "done": True, "at": dt.datetime(2026, 9, 9, 12, tzinfo=dt.timezone.utc)},
                     {"id": ids[1], "done": False, "at": None}])
                connection.execute(text(
                    "INSERT INTO engagement (customer_id, date, issues_tagged, prs_generated, prs_merged, "
                    "prs_rejected, support_requests) VALUES (:id, :day, :issues, 0, 0, 0, 0)"),
                    [{"id": ids[0], "day": START + dt.timedelta(days=1), "issues": 1},
                     {"id": ids[0], "day": START + dt.timedelta(days=15), "issues": 0},
                     {"id": ids[1], "day": START + dt.timedelta(days=30), "issues": 2}])
            upgrade()
            filters = reports.Filters(START, END)
            assert kept_retention() == counted_retention()
            assert normal(reports.kept_funnel_counts(filters)) == normal(db.session.execute(reports.funnel_counts(filters)))
            assert reports.funnel(filters).rows[0][:3] == ["Beta", 2, 50]
            assert reports.daily_totals(START, END) == counted_days(START, END) != {}
            db.session.remove()
    finally:
        with app.app_context():
            db.engine.dispose()


def waiting_for_a_lock(connection, expected: int = 1) -> bool:
    for _ in range(100):
        if connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar() >= expected:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL (TEST_POSTGRES_URL); SQLite has one")
@pytest.mark.parametrize("first", ["customer", "rows"])
def test_a_customer_moved_while_its_rows_are_written_is_counted_once_where_it_now_is(app, first):
    """A signup date and cohort changed by one transaction while another writes the customer's engagement, an
    onboarding step and an NPS answer: whichever comes second waits for the first to commit (migration 0027), so
    retention_days, funnel_days and feedback_days count the customer under its new signup date and cohort, with the
    new rows."""
    clean(app)
    with app.app_context():
        customer_id = add_customer(1, START)
        db.session.commit()
        onboarding = db.session.scalar(select(Onboarding.id).where(Onboarding.customer_id == customer_id))

        def move(connection):
            connection.execute(update(Customer).where(Customer.id == customer_id)
                               .values(signup_date=START + dt.timedelta(days=9), cohort="GA"))

        def write(connection):
            connection.execute(Engagement.__table__.insert().values(
                customer_id=customer_id, date=START + dt.timedelta(days=20), issues_tagged=1, prs_generated=0,
                prs_merged=0, prs_rejected=0, support_requests=0))
            connection.execute(update(Onboarding).where(Onboarding.id == onboarding)
                               .values(welcome_email_sent=True, welcome_email_sent_at=dt.datetime.now(dt.timezone.utc)))
            connection.execute(Feedback.__table__.insert().values(
                customer_id=customer_id, nps=10, csat=None, comment="", source="call",
                created_at=dt.datetime.now(dt.timezone.utc)))

        holding, waiting = (move, write) if first == "customer" else (write, move)
        with db.engine.connect() as holder, ThreadPoolExecutor(1) as pool:
            holding(holder)

            def second():
                with app.app_context(), db.engine.begin() as connection:
                    waiting(connection)
            later = pool.submit(second)
            assert waiting_for_a_lock(holder), f"the second writer should wait for the first: {later.done() and later.exception()}"
            holder.commit()
            later.result(timeout=30)
        db.session.expire_all()
        filters = reports.Filters(START - dt.timedelta(days=30), END)
        assert kept_retention() == counted_retention()
        assert normal(reports.kept_funnel_counts(filters)) == normal(db.session.execute(reports.funnel_counts(filters)))
        assert reports.funnel(filters).rows[0][:3] == ["GA", 1, 100]
        assert [(row.cohort, row.promoters) for row in db.session.scalars(select(FeedbackDay)) if row.promoters] == \
            [("GA", 1)]
        db.session.remove()
