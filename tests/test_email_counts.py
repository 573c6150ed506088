"""email_counts (kept by triggers, migration 0026) says what a count of email_notifications says, after any sequence
of writes: emails queued one by one and many in one statement, their status or kind changed (alone and in bulk),
rows touched without either changing, deleted, and deleted with their customer."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import delete, func, insert, select, update

from portal.customers import service
from portal.emails import queries
from portal.extensions import db
from portal.models import EMAIL_STATUSES, Customer, EmailCount, EmailNotification as EN

from .conftest import clean

KINDS = ("welcome", "weekly", "reengagement")
CUSTOMERS = 3
CHANGES = st.one_of(
    st.tuples(st.just("queued"), st.integers(0, CUSTOMERS - 1), st.sampled_from(KINDS), st.integers(1, 4)),
    st.tuples(st.just("status"), st.integers(0, 30), st.sampled_from(EMAIL_STATUSES)),
    st.tuples(st.just("statuses"), st.sampled_from(KINDS), st.sampled_from(EMAIL_STATUSES)),
    st.tuples(st.just("kind"), st.integers(0, 30), st.sampled_from(KINDS)),
    st.tuples(st.just("attempted"), st.sampled_from(KINDS)),
    st.tuples(st.just("deleted"), st.integers(0, 30)),
    st.tuples(st.just("customer_deleted"), st.integers(0, CUSTOMERS - 1)),
)


def kept() -> dict:
    rows = db.session.execute(select(EmailCount.status, EmailCount.kind, func.sum(EmailCount.emails))
                              .group_by(EmailCount.status, EmailCount.kind))
    return {(status, kind): int(emails) for status, kind, emails in rows if emails}


def counted() -> dict:
    return {(status, kind): emails for status, kind, emails in db.session.execute(
        select(EN.status, EN.kind, func.count()).group_by(EN.status, EN.kind))}


def nth_email(number: int) -> int | None:
    ids = db.session.scalars(select(EN.id).order_by(EN.id)).all()
    return ids[number % len(ids)] if ids else None


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGES, max_size=12))
def test_any_sequence_of_writes_keeps_what_a_count_says(app, changes):
    clean(app)
    with app.app_context():
        ids = [service.add_customer({"email": f"c{number}@example.com", "organization": f"Org {number}",
                                     "github_username": f"org-{number}"}, "test").id for number in range(CUSTOMERS)]
        db.session.commit()
        for number, (kind, *args) in enumerate(changes):
            if kind == "queued":
                customer = db.session.get(Customer, ids[args[0]])
                if customer is None:
                    continue
                db.session.execute(insert(EN), [
                    {"customer_id": customer.id, "kind": args[1], "dedupe_key": f"{number}:{copy}",
                     "recipient": customer.email, "status": "queued", "payload": {}} for copy in range(args[2])])
            elif kind == "status":
                db.session.execute(update(EN).where(EN.id == nth_email(args[0])).values(status=args[1]))
            elif kind == "statuses":
                db.session.execute(update(EN).where(EN.kind == args[0]).values(status=args[1]))
            elif kind == "kind":
                db.session.execute(update(EN).where(EN.id == nth_email(args[0])).values(kind=args[1]))
            elif kind == "attempted":
                db.session.execute(update(EN).where(EN.kind == args[0]).values(attempts=EN.attempts + 1))
            elif kind == "deleted":
                db.session.execute(delete(EN).where(EN.id == nth_email(args[0])))
            elif kind == "customer_deleted":
                db.session.execute(delete(Customer).where(Customer.id == ids[args[0]]))
            db.session.commit()
            assert kept() == counted()
        assert queries.status_counts() == {status: sum(emails for (found, _), emails in counted().items()
                                                       if found == status) for status in queries.COUNTED}
        assert queries.counted() == sum(counted().values())
        db.session.remove()
