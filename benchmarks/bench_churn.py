"""(f) Churn model training: `customer-tracking model train` (portal.churn.service.train plus its commit).

Seeds the synthetic history of portal.churn.synthetic (10,000 customers, 365 days: about 2.5 million daily
snapshots and the engagement, NPS answers, blockers and churn behind them), then times training a new version:
features for 12 as-of dates, the fit, and storing it. Goal: under 30 seconds.
"""
from __future__ import annotations

import time

from portal import clock
from portal.churn import load, service, synthetic
from portal.extensions import db

import common

DAYS = 365
GOAL_SECONDS = 30.0


def train_and_commit() -> None:
    service.train("benchmark")
    db.session.commit()


def run(url: str, customers: int, repeat: int) -> None:
    print(f"\n(f) churn model training: {customers:,} customers, {DAYS} days of history")
    common.fresh_database(url)
    app = common.make_app(url)
    with app.app_context():
        start = time.perf_counter()
        counts = load.load(synthetic.Params(customers=customers, days=DAYS, seed=common.SEED, today=clock.today()))
        db.session.commit()
        print(f"  seeded {counts['health_scores']:,} snapshots, {counts['engagement']:,} engagement rows "
              f"in {time.perf_counter() - start:.1f} s")
        measured = common.best_of(repeat, train_and_commit)
        stored = service.current()
        print(f"  model v{stored.version}: {stored.samples:,} samples, {stored.positives:,} churned within 30 days")
        db.session.remove()
        db.engine.dispose()
    verdict = "within goal" if measured <= GOAL_SECONDS else "OVER GOAL"
    print(f"  {'training (features, fit, store) + commit':<44} {measured:8.3f} s")
    print(f"  goal under {GOAL_SECONDS:g} s: {verdict}")
