"""(a) Health recalculation: `portal.health.snapshots.recalculate()` plus its commit, for every customer.

Seeds 10,000 customers (with onboarding) and 90 days of engagement each: 900,000 rows. The
baseline is the least any recalculation has to do: ONE raw GROUP BY computing the same sums per
customer (PRs generated, PRs merged, active days in the window) joined to the onboarding steps,
fetched in full with the DBAPI cursor. Goal: recalculate() at most 2x the baseline.
"""
from __future__ import annotations

from sqlalchemy import delete, select
from portal.health import metrics, snapshots
from portal.extensions import db
from portal.models import Engagement, HealthScore

import common

DAYS = 90
GOAL = 2.0
STEP_COLUMNS = ", ".join(f"o.{step}" for step in metrics.STEPS)
ANY_COUNT = " OR ".join(f"e.{count} > 0" for count in Engagement.COUNTS)
BASELINE_SQL = f"""
SELECT c.id, COALESCE(SUM(e.prs_generated), 0), COALESCE(SUM(e.prs_merged), 0),
       COALESCE(SUM(CASE WHEN e.date >= {{mark}} AND ({ANY_COUNT}) THEN 1 ELSE 0 END), 0),
       c.status, {STEP_COLUMNS}
FROM customers c
LEFT JOIN onboarding o ON o.customer_id = c.id
LEFT JOIN engagement e ON e.customer_id = c.id AND e.date <= {{mark}}
GROUP BY c.id, c.status, {STEP_COLUMNS}
ORDER BY c.id
"""


def group_by_baseline() -> list[tuple]:
    today = common.utc_today()
    first_day = metrics.window_start(today, metrics.Weights().window_days)
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
        cursor.execute(BASELINE_SQL.format(mark=mark), (first_day.isoformat(), today.isoformat()))
        return cursor.fetchall()
    finally:
        connection.close()


def recalculate_and_commit() -> None:
    snapshots.recalculate()
    db.session.commit()


def clear_scores() -> None:
    """Every timed run writes today's rows afresh, as the first run of a day does."""
    db.session.execute(delete(HealthScore))
    db.session.commit()


def check_same_sums(baseline_rows: list[tuple]) -> None:
    scores = db.session.execute(
        select(HealthScore.customer_id, HealthScore.prs_generated, HealthScore.prs_merged, HealthScore.days_active)
        .order_by(HealthScore.customer_id)
    ).all()
    if [tuple(row) for row in scores] != [tuple(row[:4]) for row in baseline_rows]:
        raise RuntimeError("health benchmark: recalculate() and the baseline disagree on the sums")


def run(url: str, customers: int, repeat: int) -> None:
    print(f"\n(a) health recalculation: {customers:,} customers, {customers * DAYS:,} engagement rows")
    common.fresh_database(url)
    common.seed(url, customers, DAYS)
    app = common.make_app(url)
    with app.app_context():
        baseline = common.best_of(repeat, group_by_baseline)
        measured = common.best_of(repeat, recalculate_and_commit, setup=clear_scores)
        check_same_sums(group_by_baseline())
        db.session.remove()
        db.engine.dispose()
    common.report("snapshots.recalculate() + commit", measured, "baseline: one GROUP BY, fetchall()", baseline, GOAL)
