"""The in-process scheduler as an extension: bound in the factory, started only in a process that serves the portal.

Every gunicorn worker (and every host) starts its own scheduler; the database lock in runs.start() lets one of
them run each firing, and the others skip it without a trace.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import click
from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, current_app

from .. import clock, outage
from ..extensions import db
from . import runs
from .registry import Registry
from .tasks import STANDARD_JOBS

log = logging.getLogger("portal.jobs")
# A firing this late (a busy pool, a slow start) still runs; later ones are dropped, as APScheduler's misfires.
GRACE = dt.timedelta(seconds=30)


@dataclass
class State:
    registry: Registry
    scheduler: BackgroundScheduler | None = None
    executor: ThreadPoolExecutor | None = None
    pending: set[Future] = field(default_factory=set)


def serves_requests(app: Flask) -> bool:
    """True in a server process (gunicorn, `flask run`); false in operator commands such as `flask db upgrade`,
    `flask jobs run` or customer-tracking, which create the app too but must not fire jobs while they work."""
    command = click.get_current_context(silent=True)
    if command is None:
        return True
    if command.info_name != "run":
        return False
    # With the reloader (`flask run --debug`) only the child serves; its parent just watches files.
    reloads = command.params.get("reload")
    reloads = app.debug if reloads is None else reloads
    return not reloads or os.environ.get("WERKZEUG_RUN_MAIN") == "true"


class JobScheduler:
    def init_app(self, app: Flask) -> None:
        app.extensions["portal.jobs"] = State(Registry(list(STANDARD_JOBS)))
        if app.config.get("SCHEDULER_ENABLED") and not app.testing and serves_requests(app):
            self.start(app)

    @staticmethod
    def state(app: Flask | None = None) -> State:
        return (app or current_app).extensions["portal.jobs"]

    def registry(self, app: Flask | None = None) -> Registry:
        return self.state(app).registry

    def start(self, app: Flask) -> BackgroundScheduler:
        state = self.state(app)
        if state.scheduler is not None and state.scheduler.running:
            return state.scheduler
        zone = ZoneInfo(app.config.get("PORTAL_TIMEZONE") or "UTC")
        scheduler = BackgroundScheduler(
            timezone=zone, executors={"default": SchedulerPool(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(GRACE.total_seconds())},
        )
        for job in state.registry:
            scheduler.add_job(run_scheduled, job.trigger(zone), args=(app, job.name), id=job.name, name=job.name)
        scheduler.start()
        state.scheduler = scheduler
        log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
        return scheduler

    def running(self, app: Flask | None = None) -> bool:
        scheduler = self.state(app).scheduler
        return scheduler is not None and scheduler.running

    def shutdown(self, app: Flask, wait_for_runs: bool = True) -> None:
        state = self.state(app)
        if state.scheduler is not None and state.scheduler.running:
            state.scheduler.shutdown(wait=wait_for_runs)
        state.scheduler = None
        self.wait(app)

    def run_now(self, name: str) -> runs.Started | None:
        """Start a manual run (the lock taken and the run recorded here, so the caller knows at once whether it
        started) and finish it on a worker thread of this process; None when a run already holds the lock."""
        app = current_app._get_current_object()
        started = runs.start(self.registry(app).get(name), "manual")
        if started is None:
            return None
        state = self.state(app)
        if state.executor is None:
            state.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="portal-job")
        future = state.executor.submit(finish_in_context, app, started)
        state.pending.add(future)
        future.add_done_callback(state.pending.discard)
        return started

    def wait(self, app: Flask, timeout: float | None = None) -> None:
        """Until this process's manual runs have finished (tests, shutdown)."""
        wait(list(self.state(app).pending), timeout=timeout)


def finish_in_context(app: Flask, started: runs.Started) -> None:
    with app.app_context():
        try:
            runs.execute(started)
        finally:
            db.session.remove()


def run_scheduled(app: Flask, name: str) -> None:
    """What APScheduler calls in its thread: the run for the firing that just happened, once across processes."""
    with app.app_context():
        try:
            job = scheduler.registry(app).get(name)
            now = clock.now()
            runs.run(job, "schedule", now, slot=job.slot(clock.zone(), now, GRACE))
        except outage.UNAVAILABLE as error:  # logged once per outage, not once per job and minute
            outage.of(app).refused_request(error)
        except Exception:
            log.exception("scheduled job %s could not run", name)
        finally:
            db.session.remove()


scheduler = JobScheduler()
