"""One run of a job: take its lock, record the run in job_runs, report progress, record how it ended.

The run's own rows are written in short transactions of their own (not in the job's session), so the page
sees a run start and move while the job's work is still uncommitted, and a failed job still records why.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import OperationalError, StatementError

from .. import clock, monitoring
from ..extensions import db
from ..models import JobRun
from .locks import AdvisoryLock, LeaseLock, lock_for
from .registry import Context, Job

log = logging.getLogger("portal.jobs")
ABANDONED = "abandoned: the process running it stopped before it finished"
# user:password@ in a URL, and key=value pairs whose name says secret.
CREDENTIALS = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
SECRET_PAIRS = re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key)\b(\s*[=:]\s*)\S+")


def runner_name() -> str:
    """Read at each run, not at import: gunicorn forks workers after importing the app."""
    return f"{socket.gethostname()[:90]}:{os.getpid()}"


@dataclass
class Started:
    job: Job
    run_id: int
    trigger: str
    now: dt.datetime
    lock: AdvisoryLock | LeaseLock
    clock_start: float


def start(job: Job, trigger: str, now: dt.datetime | None = None, slot: dt.datetime | None = None) -> Started | None:
    """Take the job's lock and record a running row; None when another run holds the lock, or when a
    scheduled run for the same `slot` already happened (a faster process fired it first)."""
    now = now or clock.now()
    lock = lock_for(db.engine, job.name, runner_name(), job.timeout, now)
    if not lock.acquire():
        log.info("job %s skipped: another run holds its lock", job.name)
        return None
    try:
        run_id = record_start(job, trigger, now, slot)
    except BaseException:
        lock.release()
        raise
    if run_id is None:
        log.info("job %s skipped: its %s run already happened", job.name, slot.isoformat())
        lock.release()
        return None
    return Started(job, run_id, trigger, now, lock, time.monotonic())


def record_start(job: Job, trigger: str, now: dt.datetime, slot: dt.datetime | None) -> int | None:
    """Under the lock: close dead runs, then the new run's id, or None when `slot` already ran."""
    with db.engine.begin() as connection:
        # Holding the lock, no other run of this job is alive: a row still marked running is a dead one.
        connection.execute(update(JobRun).where(JobRun.job == job.name, JobRun.outcome == "running")
                           .values(outcome="failed", finished_at=now, error=ABANDONED))
        if slot is not None and connection.scalar(select(exists().where(
                JobRun.job == job.name, JobRun.trigger == "schedule", JobRun.started_at >= slot))):
            return None
        return connection.execute(insert(JobRun).values(
            job=job.name, trigger=trigger, started_at=now, outcome="running", progress_done=0, counts={},
            error="", runner=runner_name())).inserted_primary_key[0]


def execute(started: Started) -> str:
    """Run the job in the current app context; record the outcome, release the lock, close the session."""
    try:
        outcome, values = _call(started)
        seconds = time.monotonic() - started.clock_start
        monitoring.job_finished(started.job.name, outcome, seconds)
        finished_at = started.now + dt.timedelta(seconds=seconds)
        with db.engine.begin() as connection:
            connection.execute(update(JobRun).where(JobRun.id == started.run_id)
                               .values(outcome=outcome, finished_at=finished_at, **values))
    finally:
        started.lock.release()
    return outcome


def _call(started: Started) -> tuple[str, dict]:
    context = Context(started.now, clock.local_date(started.now), ProgressWriter(started.run_id))
    try:
        counts = dict(started.job.run(context) or {})
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        log.exception("job %s failed (run %s)", started.job.name, started.run_id)
        return "failed", {"error": summarize(error)}
    finally:
        db.session.remove()
    return "succeeded", {"counts": counts}


def run(job: Job, trigger: str, now: dt.datetime | None = None, slot: dt.datetime | None = None) -> str | None:
    """Start and execute in this thread: the outcome, or None when the run did not happen (lock held)."""
    started = start(job, trigger, now, slot)
    return execute(started) if started is not None else None


class ProgressWriter:
    """The progress(done, total) callback: updates the run's row, at most every `interval` seconds.

    Call it between commits of the job's own work: on SQLite a writer waiting on an open write would stall.
    """

    def __init__(self, run_id: int, interval: float = 0.5):
        self.run_id, self.interval = run_id, interval
        self.last = float("-inf")

    def __call__(self, done: int, total: int | None = None) -> None:
        moment = time.monotonic()
        finished = total is not None and done >= total
        if moment - self.last < self.interval and not finished:
            return
        self.last = moment
        try:
            with db.engine.begin() as connection:
                connection.execute(update(JobRun).where(JobRun.id == self.run_id)
                                   .values(progress_done=done, progress_total=total))
        except OperationalError:
            # Progress is for the page; a busy database must not fail the job itself.
            log.warning("job run %s: progress not recorded", self.run_id)


def summarize(error: BaseException) -> str:
    """The exception and the last frames it passed through, without SQL parameters or credentials."""
    message = str(error.orig) if isinstance(error, StatementError) and error.orig is not None else str(error)
    message = SECRET_PAIRS.sub(r"\1\2***", CREDENTIALS.sub(r"\1***@", " ".join(message.split())))
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    where = " <- ".join(f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}" for frame in reversed(frames))
    text = f"{type(error).__name__}: {message}" + (f" (at {where})" if where else "")
    return text[:2000]
