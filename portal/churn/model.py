"""The churn model as plain numbers: fit with scikit-learn, stored and scored as JSON. Pure: no Flask, no database.

A fitted Pipeline(StandardScaler, LogisticRegression) is fully described by the scaler's means and scales and the
regression's coefficients and intercept, so that is all a stored version holds: loading it runs no code.
Scoring needs numpy alone; scikit-learn is imported only by the functions that train and evaluate, as importing
it took every process of the portal (web workers, every CLI command) 0.8 s and 100 MB more.
"""
from __future__ import annotations

import math

import numpy as np

ALGORITHM = "logistic_regression+standard_scaler"
TOP_SHARE = 0.10


def fit(values: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=2000))])
    pipeline.fit(values, labels)
    scaler, regression = pipeline.named_steps["scale"], pipeline.named_steps["model"]
    return {"coefficients": regression.coef_[0].tolist(), "intercept": float(regression.intercept_[0]),
            "means": scaler.mean_.tolist(), "scales": scaler.scale_.tolist()}


def standardised(parameters: dict, values: np.ndarray) -> np.ndarray:
    return (values - np.array(parameters["means"])) / np.array(parameters["scales"])


def probabilities(parameters: dict, values: np.ndarray) -> np.ndarray:
    logits = standardised(parameters, values) @ np.array(parameters["coefficients"]) + parameters["intercept"]
    return 1.0 / (1.0 + np.exp(-logits))


def contributions(parameters: dict, row: np.ndarray) -> np.ndarray:
    """How far each feature moves this customer's log-odds from an average customer's."""
    return standardised(parameters, row) * np.array(parameters["coefficients"])


def auc(labels: np.ndarray, risk: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, risk)) if 0 < labels.sum() < len(labels) else None


def precision_at_top(labels: np.ndarray, risk: np.ndarray, share: float = TOP_SHARE) -> float | None:
    """The churn rate among the riskiest `share` of customers (ties broken by order, riskiest first)."""
    if not len(labels):
        return None
    count = max(1, math.ceil(len(labels) * share))
    riskiest = np.argsort(-risk, kind="stable")[:count]
    return float(labels[riskiest].mean())


def calibration(labels: np.ndarray, risk: np.ndarray, bins: int = 5) -> list[dict]:
    """Equal-count bins from the least to the most risky: mean predicted risk, observed churn rate, count."""
    order = np.argsort(risk, kind="stable")
    return [{"predicted": float(risk[part].mean()), "observed": float(labels[part].mean()), "count": int(len(part))}
            for part in np.array_split(order, bins) if len(part)]


def evaluate(labels: np.ndarray, risk: np.ndarray) -> dict:
    return {"auc": auc(labels, risk), "precision_top_10": precision_at_top(labels, risk),
            "calibration": calibration(labels, risk), "samples": int(len(labels)), "positives": int(labels.sum())}
