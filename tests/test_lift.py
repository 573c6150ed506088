"""Lift on a constructed case, computed by hand below, first on plain values, then from the database."""
from __future__ import annotations

import datetime as dt

import pytest

from portal.extensions import db
from portal.models import Customer, Intervention, Playbook
from portal.playbooks import catalog, lift
from tests.test_playbooks import snapshot

START = dt.date(2027, 3, 10)  # a Wednesday: its ISO week runs from Monday 8 to Sunday 14 March
D14, D30 = dt.date(2027, 3, 24), dt.date(2027, 4, 9)
RISK, ONB = "at_risk", "onboarding"
# customer: [(day, band, stage, score, days active)]
SNAPSHOTS = {
    # treated (a finished task of playbook 1 created on START): changes (+15, +4) at 14 days and (+20, +8) at 30
    1: [(START, RISK, ONB, 40, 2), (D14, RISK, ONB, 55, 6), (D30, "needs_attention", ONB, 60, 10)],
    # treated: (+5, +2) at 14 days, no snapshot at 30 days so not counted there
    2: [(START, RISK, ONB, 30, 1), (D14, RISK, ONB, 35, 3)],
    # treated: (0, 0) at 14 days
    9: [(START, RISK, ONB, 50, 5), (D14, RISK, ONB, 50, 5)],
    # control: at risk and onboarding on Friday of that week, though not on START: (+2, +1) and (-4, 0)
    3: [(START, "needs_attention", ONB, 45, 3), (dt.date(2027, 3, 12), RISK, ONB, 44, 3), (D14, RISK, ONB, 47, 4),
        (D30, RISK, ONB, 41, 3)],
    # control: (-2, 0) and (+4, +3)
    4: [(START, RISK, ONB, 35, 2), (D14, RISK, ONB, 33, 2), (D30, RISK, ONB, 39, 5)],
    # not a control: a rule-made task 9 days before START
    5: [(START, RISK, ONB, 30, 1), (D14, RISK, ONB, 90, 20)],
    # not a control: another stage
    6: [(START, RISK, "initial_adoption", 20, 1), (D14, RISK, "initial_adoption", 80, 20)],
    # not a control: at risk and onboarding only on the Sunday before the week
    7: [(dt.date(2027, 3, 7), RISK, ONB, 30, 1), (START, "needs_attention", ONB, 52, 2), (D14, RISK, ONB, 10, 0)],
    # control: its rule-made task was 31 days before START; (+6, 0) at 14 days, nothing at 30
    8: [(START, RISK, ONB, 50, 4), (D14, RISK, ONB, 56, 4)],
}
RULE_DAYS = {1: [START], 2: [START], 9: [START], 5: [dt.date(2027, 3, 1)], 8: [dt.date(2027, 2, 7)]}
TREATED = (1, 2, 9)
# By hand. 14 days: treated scores +15, +5, 0 -> mean 20/3; days +4, +2, 0 -> mean 2.
#   controls 3, 4, 8 (each once, though they are controls of three starts): scores +2, -2, +6 -> 2; days 1, 0, 0 -> 1/3.
#   lift: score 20/3 - 2 = 14/3; days 2 - 1/3 = 5/3.
# 30 days: treated only customer 1: +20, +8. Controls 3 and 4: scores -4, +4 -> 0; days 0, +3 -> 1.5.
#   lift: score 20; days 6.5.
EXPECTED = {
    14: dict(treated_n=3, control_n=3, treated_score=20 / 3, control_score=2, treated_days=2, control_days=1 / 3,
             score_lift=14 / 3, days_lift=5 / 3),
    30: dict(treated_n=1, control_n=2, treated_score=20, control_score=0, treated_days=8, control_days=1.5,
             score_lift=20, days_lift=6.5),
}


def check(result: dict[int, lift.Lift]) -> None:
    for horizon, expected in EXPECTED.items():
        item = result[horizon]
        for name, value in expected.items():
            assert getattr(item, name) == pytest.approx(value), (horizon, name)
        assert not item.enough


def test_lift_on_the_constructed_case():
    snapshots = {(customer_id, day): lift.Snapshot(score, days, band, stage)
                 for customer_id, rows in SNAPSHOTS.items() for day, band, stage, score, days in rows}
    starts = [lift.Start(1, customer_id, START) for customer_id in TREATED]
    board = lift.leaderboard(starts, snapshots, RULE_DAYS)
    assert list(board) == [1]
    check(board[1])


def test_five_on_each_side_is_enough_and_no_sample_has_no_mean():
    assert lift.Lift(14, 5, 5, 1.0, 0.0, 1.0, 0.0).enough
    assert not lift.Lift(14, 5, 4, 1.0, 0.0, 1.0, 0.0).enough
    empty = lift.Lift(30, 0, 3, None, 1.0, None, 1.0)
    assert (empty.score_lift, empty.days_lift) == (None, None)
    assert lift.iso_week(dt.date(2027, 3, 14))[0] == dt.date(2027, 3, 8)


def test_the_leaderboard_reads_the_same_case_from_the_database(ctx):
    book = Playbook(name="Rescue", condition={}, steps=[], created_by="test")
    db.session.add(book)
    for customer_id in sorted(SNAPSHOTS):
        db.session.add(Customer(id=customer_id, email=f"c{customer_id}@example.com", organization=f"Org {customer_id}",
                                github_username=f"org-{customer_id}", signup_date=dt.date(2027, 1, 1)))
    db.session.flush()
    for customer_id, rows in SNAPSHOTS.items():
        db.session.add_all(snapshot(customer_id, day, band, stage, score, days) for day, band, stage, score, days in rows)
    for customer_id, days in RULE_DAYS.items():
        treated = customer_id in TREATED
        for day in days:
            db.session.add(Intervention(
                customer_id=customer_id, kind="task", title="t", trigger="rule", status="done" if treated else "open",
                rule=book.rule if treated else "at_risk_playbook",
                created_at=dt.datetime.combine(day, dt.time(9), dt.timezone.utc)))
    # An open task of the playbook is no start yet (and two months before START, it leaves customer 4 a control).
    db.session.add(Intervention(customer_id=4, kind="task", title="open", trigger="rule", status="open", rule=book.rule,
                                created_at=dt.datetime(2027, 1, 2, 9, tzinfo=dt.timezone.utc)))
    db.session.commit()
    board = catalog.leaderboard()
    assert list(board) == [book.id]
    check(board[book.id])
