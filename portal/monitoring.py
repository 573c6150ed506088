"""`GET /metrics` in Prometheus's text format, for a monitoring system (prometheus_client).

Off unless `METRICS_TOKEN` is set: then the scraper sends `Authorization: Bearer <token>`, and the portal
records, per process,
- portal_request_duration_seconds{endpoint, method}: how long each route takes to answer;
- portal_requests_total{endpoint, method, status};
- portal_webhook_deliveries_total{source, status}: what the webhooks and the metrics API answered senders;
- portal_job_duration_seconds{job, outcome}: each job run;
and reads at each scrape from the database, so every process gives the same figures,
- portal_outbox_emails{state}: emails queued (due now or later) and failed;
- portal_database_up: 0 while this process finds the database down.

Under gunicorn, gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a folder of its own before the workers
start, so a scrape, answered by any one worker, adds up every worker's figures.
"""
from __future__ import annotations

import functools
import hmac
import os
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from sqlalchemy import func, select

from . import clock, outage
from .extensions import db
from .models import EmailNotification as EN

bp = Blueprint("monitoring", __name__)


@dataclass(frozen=True)
class Figures:
    request_seconds: Any
    requests: Any
    deliveries: Any
    job_seconds: Any


@functools.cache
def figures() -> Figures:
    """The process's metrics, made the first time an app measures: prometheus_client keeps one registry a process,
    and is imported only then (12 MB that a portal without METRICS_TOKEN, or a command, does not carry)."""
    from prometheus_client import Counter, Histogram

    return Figures(
        Histogram("portal_request_duration_seconds", "Time to answer a request, by route.", ["endpoint", "method"],
                  buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)),
        Counter("portal_requests", "Requests answered, by route and status.", ["endpoint", "method", "status"]),
        Counter("portal_webhook_deliveries", "What webhook and metrics-API senders were answered.",
                ["source", "status"]),
        Histogram("portal_job_duration_seconds", "Time a job run took, by outcome.", ["job", "outcome"],
                  buckets=(.1, .5, 1, 5, 15, 60, 300, 900, 3600)))


SOURCES = {"integrations.github_webhook": "github", "integrations.landing_webhook": "landing",
           "integrations.email_events_webhook": "email_provider", "integrations.metrics_track": "metrics_api"}


def enabled(app: Flask | None = None) -> bool:
    return bool((app or current_app).config.get("METRICS_TOKEN"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    if not enabled(app):
        return  # no hooks at all: nothing is measured, nothing costs
    measured = figures()

    @app.before_request
    def started() -> None:
        g.monitoring_started = time.perf_counter()

    @app.after_request
    def answered(response: Response) -> Response:
        began = g.pop("monitoring_started", None)
        endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
        if began is not None and endpoint != "monitoring.metrics":
            measured.request_seconds.labels(endpoint, request.method).observe(time.perf_counter() - began)
            measured.requests.labels(endpoint, request.method, str(response.status_code)).inc()
            if endpoint in SOURCES:
                measured.deliveries.labels(SOURCES[endpoint], str(response.status_code)).inc()
        return response


def job_finished(job: str, outcome: str, seconds: float) -> None:
    if enabled():
        figures().job_seconds.labels(job, outcome).observe(seconds)


class DatabaseFigures:
    """Read at each scrape: the same in every process."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("portal_database_up", "1 while this process reaches the database.")
        outbox = GaugeMetricFamily("portal_outbox_emails", "Emails in the outbox by state.", labels=["state"])
        try:
            now = clock.now()
            queued = db.session.execute(select(func.count(EN.id), func.count(EN.id).filter(
                (EN.next_attempt_at.is_(None)) | (EN.next_attempt_at <= now))).where(EN.status == "queued")).one()
            failed = db.session.scalar(select(func.count(EN.id)).where(EN.status == "failed"))
        except outage.UNAVAILABLE as error:
            db.session.rollback()
            outage.of().refused_request(error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)  # it just answered, even while an outage is settling
        outbox.add_metric(["queued"], queued[0])
        outbox.add_metric(["due"], queued[1])
        outbox.add_metric(["failed"], failed)
        yield up
        yield outbox


def token_matches() -> bool:
    sent = request.headers.get("Authorization", "")
    expected = f"Bearer {current_app.config['METRICS_TOKEN']}"
    return hmac.compare_digest(sent.encode(), expected.encode())


@bp.get("/metrics")
def metrics():
    if not enabled():
        abort(404)
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

    if not token_matches():
        return Response("A bearer token is required.\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                        mimetype="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    figures = CollectorRegistry(auto_describe=False)
    figures.register(DatabaseFigures())
    return Response(generate_latest(processes) + generate_latest(figures), content_type=CONTENT_TYPE_LATEST)
