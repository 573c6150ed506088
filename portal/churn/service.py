"""Train, store, backtest and apply the churn model against the portal's database."""
from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import func, select

from .. import audit, clock
from ..extensions import db
from ..models import ChurnModel, HealthScore
from . import DATES, HORIZON, STEP, NotEnoughData, drivers, features, model


def training_dates(end: dt.date, count: int = DATES) -> list[dt.date]:
    """As-of dates every STEP days back from `end`, none before the history can show a 30-day change."""
    first = db.session.scalar(select(func.min(HealthScore.date)))
    if first is None:
        return []
    earliest = first + dt.timedelta(days=max(features.CHANGES))
    return [day for day in (end - dt.timedelta(days=STEP * back) for back in range(count)) if day >= earliest][::-1]


def fit_until(end: dt.date, count: int = DATES) -> tuple[dict, features.Samples, np.ndarray]:
    """Fit on as-of dates up to `end`, whose 30 days of outcome must be known by the caller's today."""
    dates = training_dates(end, count)
    samples = features.build(dates) if dates else None
    if samples is None or not samples.keys:
        raise NotEnoughData("no health snapshots to learn from: run the health recalculation for a month or more")
    labels = samples.labels(HORIZON)
    if labels.sum() == 0 or labels.sum() == len(labels):
        raise NotEnoughData(f"{len(labels)} samples but no churned customers among them to learn from")
    return model.fit(samples.values, labels), samples, labels


def train(actor: str, today: dt.date | None = None, count: int = DATES) -> ChurnModel:
    """Fit on the history whose outcome is known (as-of dates up to 30 days ago) and store a new version."""
    today = today or clock.today()
    parameters, samples, labels = fit_until(today - dt.timedelta(days=HORIZON), count)
    fitted = model.evaluate(labels, model.probabilities(parameters, samples.values))
    version = (db.session.scalar(select(func.max(ChurnModel.version))) or 0) + 1
    stored = ChurnModel(version=version, trained_by=actor, algorithm=model.ALGORITHM, features=list(features.FEATURES),
                        parameters=parameters, window_start=samples.keys[0][1], window_end=samples.keys[-1][1],
                        samples=len(labels), positives=int(labels.sum()), metrics={"training": fitted})
    db.session.add(stored)
    db.session.flush()
    audit.created(actor, "churn_models", f"v{version}")
    return stored


def backtest(cutoff: dt.date, today: dt.date | None = None, count: int = DATES) -> dict:
    """Train on the past up to the cutoff, score every customer active at the cutoff, compare with the 30 days
    that followed; the plain health score (risk = 100 - score) is scored the same way as the baseline."""
    today = today or clock.today()
    if cutoff + dt.timedelta(days=HORIZON) > today:
        raise NotEnoughData(f"the cutoff must be at least {HORIZON} days ago, so that its outcome is known")
    parameters, training, labels = fit_until(cutoff - dt.timedelta(days=HORIZON), count)
    held_out = features.build([cutoff])
    if not held_out.keys:
        raise NotEnoughData(f"no active customer with a health snapshot on {cutoff}")
    outcome = held_out.labels(HORIZON)
    return {"cutoff": cutoff, "training_samples": len(labels), "training_positives": int(labels.sum()),
            "parameters": parameters,
            "model": model.evaluate(outcome, model.probabilities(parameters, held_out.values)),
            "baseline": model.evaluate(outcome, 100.0 - held_out.scores)}


def current() -> ChurnModel | None:
    return db.session.scalars(select(ChurnModel).order_by(ChurnModel.version.desc()).limit(1)).first()


def train_job(now: dt.datetime | None = None, progress=None) -> dict:
    """The weekly retraining: a new version from the history up to now; counts for the job log."""
    today = clock.local_date(now) if now else clock.today()
    try:
        stored = train("schedule", today)
    except NotEnoughData as reason:
        return {"version": 0, "samples": 0, "positives": 0, "skipped": str(reason)}
    db.session.commit()
    if progress is not None:
        progress(1, 1)
    return {"version": stored.version, "samples": stored.samples, "positives": stored.positives}


def usable(stored: ChurnModel | None) -> bool:
    """A version trained on another list of features cannot score today's; it waits for the next training."""
    return stored is not None and list(stored.features) == list(features.FEATURES)


def risk_of(customer_id: int, today: dt.date | None = None) -> dict:
    """The customer's churn risk now, as of 7 and 30 days ago, and the three features moving it most.

    A fixed number of queries whatever the history: the model, then one features.build for the three dates.
    """
    today = today or clock.today()
    stored = current()
    if not usable(stored):
        return {"model": stored, "usable": False, "risk": None}
    dates = {"now": today, 7: today - dt.timedelta(days=7), 30: today - dt.timedelta(days=30)}
    samples = features.build(dates.values(), [customer_id])
    rows = {when: samples.row(customer_id, day) for when, day in dates.items()}
    risks = {when: float(model.probabilities(stored.parameters, row[None, :])[0])
             for when, row in rows.items() if row is not None}
    result = {"model": stored, "usable": True, "risk": risks.get("now"), "earlier": [
        (days, risks.get(days)) for days in (7, 30)], "drivers": []}
    if rows["now"] is not None:
        pushes = model.contributions(stored.parameters, rows["now"])
        strongest = sorted(range(len(pushes)), key=lambda index: -abs(pushes[index]))[:3]
        result["drivers"] = [{"feature": features.FEATURES[index], "raises": bool(pushes[index] > 0),
                              "phrase": drivers.phrase(features.FEATURES[index], float(rows["now"][index]))}
                             for index in strongest]
    return result
