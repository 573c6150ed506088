"""`flask --app wsgi jobs list` and `jobs run NAME`: the same registry, lock and run records as the scheduler."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .. import clock
from . import queries, runs
from .registry import UnknownJob
from .scheduler import scheduler

jobs = AppGroup("jobs", help="The scheduled jobs: list them, or run one now.")


@jobs.command("list")
def list_jobs() -> None:
    """Each job with its schedule, next run (in the portal's time zone) and last outcome."""
    zone = clock.zone()
    for item in queries.statuses(scheduler.registry(), zone, clock.now()):
        following = item.next_run.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if item.next_run else "-"
        last = f"{item.outcome} {item.last.started_at.astimezone(zone):%Y-%m-%d %H:%M}" if item.last else "never run"
        click.echo(f"{item.job.name:<18} {item.job.schedule:<20} next {following:<22} last {last}")


@jobs.command("run")
@click.argument("name")
def run_job(name: str) -> None:
    """Run NAME now in this process, through the lock every process uses, and record the run."""
    try:
        job = scheduler.registry().get(name)
    except UnknownJob as error:
        raise click.ClickException(str(error)) from None
    outcome = runs.run(job, "manual")
    if outcome is None:
        raise click.ClickException(f"{name} is already running in another process; nothing done")
    last = queries.last_runs([name])[name]
    if outcome != "succeeded":
        raise click.ClickException(f"{name} failed: {last.error.splitlines()[0] if last.error else 'no detail'}")
    counts = ", ".join(f"{key} {value}" for key, value in last.counts.items())
    click.echo(f"{name} succeeded" + (f": {counts}" if counts else ""))


def init_app(app: Flask) -> None:
    app.cli.add_command(jobs)
