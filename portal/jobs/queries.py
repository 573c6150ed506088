"""What the jobs page shows: each job's next and last run, and the runs, newest first."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..customers.queries import Page
from ..extensions import db
from ..models import JobRun
from .registry import Job, Registry

PAGE_SIZE = 20


@dataclass
class JobStatus:
    job: Job
    next_run: dt.datetime | None
    last: JobRun | None
    outcome: str | None

    @property
    def running(self) -> bool:
        return self.outcome == "running"


def shown_outcome(run: JobRun, job: Job | None, now: dt.datetime) -> str:
    """A run still marked running after its job's timeout died with its process: it is shown as abandoned."""
    timeout = job.timeout if job is not None else Job.timeout
    if run.outcome == "running" and run.started_at < now - timeout:
        return "abandoned"
    return run.outcome


def last_runs(names: list[str]) -> dict[str, JobRun]:
    """The newest run of each job, in one query (ids grow with start order)."""
    newest = select(func.max(JobRun.id)).where(JobRun.job.in_(names)).group_by(JobRun.job)
    return {run.job: run for run in db.session.scalars(select(JobRun).where(JobRun.id.in_(newest)))}


def status(job: Job, last: JobRun | None, zone: ZoneInfo, now: dt.datetime) -> JobStatus:
    # From the trigger itself, so the page is right in a process whose scheduler is not running.
    return JobStatus(job, job.next_run(zone, now), last, shown_outcome(last, job, now) if last else None)


def statuses(registry: Registry, zone: ZoneInfo, now: dt.datetime) -> list[JobStatus]:
    jobs = list(registry)
    last = last_runs([job.name for job in jobs])
    return [status(job, last.get(job.name), zone, now) for job in jobs]


def runs_page(number: int, job: str | None = None) -> Page:
    where = [JobRun.job == job] if job else []
    total = db.session.scalar(select(func.count(JobRun.id)).where(*where))
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(number, pages)
    rows = db.session.scalars(select(JobRun).where(*where).order_by(JobRun.id.desc())
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return Page(list(rows), total, page, pages)
