"""The churn model's pure parts: the JSON form of a fit, the backtest figures, the phrases, the generator."""
import datetime as dt
import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from portal.churn import drivers, features, model, synthetic


def test_the_stored_numbers_score_exactly_as_the_fitted_pipeline():
    rng = np.random.default_rng(1)
    values = rng.normal([10, 0, 50], [3, 1, 20], size=(300, 3))
    labels = (values[:, 0] + rng.normal(0, 2, 300) > 11).astype(int)
    parameters = json.loads(json.dumps(model.fit(values, labels)))  # what the database keeps, and nothing else
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(values, labels)
    assert np.allclose(model.probabilities(parameters, values), pipeline.predict_proba(values)[:, 1])
    assert parameters["coefficients"][0] > 0
    contributions = model.contributions(parameters, values[0])
    logit = contributions.sum() + parameters["intercept"]
    assert np.isclose(1 / (1 + np.exp(-logit)), model.probabilities(parameters, values[:1])[0])


def test_backtest_figures():
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    risk = np.array([0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 0.4, 0.9, 0.8, 0.7])
    assert model.auc(labels, risk) == pytest.approx(14 / 16)
    assert model.auc(np.zeros(3, dtype=int), np.ones(3)) is None
    assert model.precision_at_top(labels, risk) == 0.0  # the riskiest one (0.9) did not churn
    assert model.precision_at_top(labels, risk, 0.3) == pytest.approx(2 / 3)
    bins = model.calibration(labels, risk, bins=5)
    assert [part["count"] for part in bins] == [2] * 5
    assert bins[-1] == {"predicted": pytest.approx(0.85), "observed": 0.5, "count": 2}


@pytest.mark.parametrize("name, value, words", [
    ("rejection_rate_change", 30.0, "rejection rate rose 30 points in 4 weeks"),
    ("activity_change_30d", -15.0, "activity score fell 15 points in 30 days"),
    ("activity_change_7d", 0.2, "activity score unchanged over 7 days"),
    ("success", 12.5, "success 12 of 25 points"),
    ("days_since_activity", 56.0, "no activity for 56+ days"),
    ("days_since_activity", 3.0, "last active 3 days ago"),
    ("blocker_days", 12.0, "a blocker open for 12 days"),
    ("blocker_days", 0.0, "no long-open blocker"),
    ("last_nps", 3.0, "last NPS answer 3"),
    ("support_requests", 4.0, "4 support requests in 4 weeks"),
])
def test_phrases(name, value, words):
    assert drivers.phrase(name, value) == words


def test_every_feature_has_its_own_phrase():
    fallback = [name for name in features.FEATURES if drivers.phrase(name, 1.0) == f"{name.replace('_', ' ')} 1"]
    assert fallback == []


def test_blocker_and_nps_as_of_a_date():
    day = dt.date(2026, 3, 1)
    history = ([dt.date(2026, 2, 1), dt.date(2026, 2, 20)], [("none", "billing"), ("billing", "none")], "none", day)
    assert features.blocker_features(history, dt.date(2026, 2, 11)) == [1.0, 10.0]
    assert features.blocker_features(history, day) == [0.0, 0.0]
    assert features.blocker_features(history, dt.date(2026, 1, 1)) == [0.0, 0.0]  # before it was set
    assert features.blocker_features(([], [], "technical", dt.date(2026, 2, 27)), day) == [1.0, 2.0]
    answers = ([dt.date(2026, 1, 5), dt.date(2026, 2, 5)], [9, 3])
    assert features.last_nps(answers, dt.date(2026, 1, 31)) == 9.0 and features.last_nps(answers, day) == 3.0
    assert features.last_nps(None, day) == features.NEUTRAL_NPS


def test_usage_features_rates_and_days_since_activity():
    day, signup = dt.date(2026, 3, 1), dt.date(2025, 1, 1)
    assert features.usage_features((6, 2, 1, 3, 2, 4), day, signup) == [4.0, 75.0, 50.0, 2.0]
    assert features.usage_features(None, day, signup) == [56.0, 0.0, 0.0, 0.0]
    assert features.usage_features(None, day, dt.date(2026, 2, 20))[0] == 9.0  # never active, signed up 9 days ago


def test_the_generator_is_repeatable_and_stops_at_churn():
    params = synthetic.Params(customers=60, days=120, seed=5)
    first, again = list(synthetic.generate(params)), list(synthetic.generate(params))
    assert [(h.churned_on, h.mechanic, len(h.engagement)) for h in first] == \
           [(h.churned_on, h.mechanic, len(h.engagement)) for h in again]
    churned = [h for h in first if h.churned_on]
    assert churned and all(row[0] <= h.churned_on for h in churned for row in h.engagement)
    assert all(h.snapshots[-1][0] == min(h.churned_on or params.today, params.today) for h in first)
