"""/healthz and /readyz for load balancers and monitors; public, small, and never a page of errors.

- /healthz: the process answers (no database asked), for a liveness check that restarts a hung worker.
- /readyz: the database answers, its schema is the code's (every migration applied), and the scheduler runs
  where it should; 503 with Retry-After and the failing check otherwise, so a balancer sends no traffic here.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import inspect, text

from . import outage
from .database import migrations
from .extensions import db
from .jobs.scheduler import scheduler

bp = Blueprint("probes", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


def code_revisions() -> set[str]:
    """The heads of the migrations shipped with this code, read once per process."""
    heads = current_app.extensions.get("portal.migration_heads")
    if heads is None:
        heads = current_app.extensions["portal.migration_heads"] = set(migrations().get_heads())
    return heads


def database_check() -> tuple[str, str]:
    """The first check that fails, and why; ("", "") when the database answers with the code's schema."""
    try:  # asking whether the table exists is the database's first test
        if not inspect(db.session.connection()).has_table("alembic_version"):
            return "migrations", "not applied: run flask --app wsgi db upgrade"
        applied = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except outage.UNAVAILABLE as error:
        db.session.rollback()
        outage.of().refused_request(error)  # the reason goes to the log, not to whoever asks
        return "database", "unavailable"
    if applied != code_revisions():
        return "migrations", (f"database at {', '.join(sorted(applied)) or 'nothing'}, "
                              f"code at {', '.join(sorted(code_revisions()))}")
    return "", ""


@bp.get("/readyz")
def readyz():
    checks = {"database": "ok", "migrations": "ok"}
    failed, problem = database_check()
    if failed:
        checks[failed] = problem
        if failed == "database":
            checks["migrations"] = "unknown"
    enabled = bool(current_app.config.get("SCHEDULER_ENABLED")) and not current_app.testing
    checks["scheduler"] = ("running" if scheduler.running() else "stopped") if enabled else "off in this process"
    ready = not failed and checks["scheduler"] != "stopped"
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    if ready:
        return response
    return response, 503, {"Retry-After": str(outage.RETRY_AFTER_SECONDS)}
