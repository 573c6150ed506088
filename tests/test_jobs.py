"""Scheduled jobs: schedules on a controlled clock, the one-runner lock, run records, and the factory's scheduler."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.extensions import db
from portal.jobs import locks, queries, runs
from portal.jobs.registry import Job, Registry, UnknownJob
from portal.jobs.scheduler import GRACE, scheduler, serves_requests
from portal.jobs.tasks import STANDARD_JOBS
from portal.models import JobLease, JobRun

UTC = dt.timezone.utc
JOBS = Registry(list(STANDARD_JOBS))
NOW = dt.datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def job(name="probe", work=None, **options) -> Job:
    return Job(name, "A job for the tests.", "Every minute", {"minute": "*"}, work or (lambda context: {"done": 1}),
               **options)


# Schedules -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone, after, expected",
    [
        # Paris moves to summer time on Sunday 28 March 2027: 08:00 is 07:00 UTC before and 06:00 UTC after.
        ("Europe/Paris", utc(2027, 3, 22, 6, 0), utc(2027, 3, 22, 7, 0)),
        ("Europe/Paris", utc(2027, 3, 22, 7, 0, 1), utc(2027, 3, 29, 6, 0)),
        ("Europe/Paris", utc(2027, 10, 26, 0, 0), utc(2027, 11, 1, 7, 0)),
        # New York moves on Sunday 14 March 2027: 13:00 UTC (EST) before, 12:00 UTC (EDT) after.
        ("America/New_York", utc(2027, 3, 7, 0, 0), utc(2027, 3, 8, 13, 0)),
        ("America/New_York", utc(2027, 3, 8, 13, 0, 1), utc(2027, 3, 15, 12, 0)),
        ("UTC", utc(2027, 3, 10, 12, 0), utc(2027, 3, 15, 8, 0)),
    ],
)
def test_weekly_emails_fire_on_monday_at_eight_in_the_portals_zone(zone, after, expected):
    fire = JOBS.get("weekly_emails").next_run(ZoneInfo(zone), after)
    assert fire == expected
    local = fire.astimezone(ZoneInfo(zone))
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)


def fire_times(name: str, zone: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    trigger, times, previous = JOBS.get(name).trigger(ZoneInfo(zone)), [], None
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, after if previous is None else previous)
        times.append(previous.astimezone(UTC))  # aware datetimes of one zone subtract as wall-clock times
    return times


def test_health_runs_hourly_and_its_first_run_of_a_day_is_just_after_local_midnight():
    times = fire_times("health", "Europe/Paris", utc(2027, 3, 27, 21, 30), 5)
    assert all(b - a == dt.timedelta(hours=1) for a, b in zip(times, times[1:]))  # across the DST change too
    assert [t.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") for t in times][:3] == ["23:05", "00:05", "01:05"]


@pytest.mark.parametrize("name, local_time", [("at_risk_playbook", "07:00"), ("playbooks", "07:30"),
                                              ("reengagement", "09:00")])
def test_daily_jobs_run_once_a_day_at_the_same_local_time(name, local_time):
    times = fire_times(name, "America/New_York", utc(2027, 3, 12, 0, 0), 4)
    local = [t.astimezone(ZoneInfo("America/New_York")) for t in times]
    assert [t.strftime("%H:%M") for t in local] == [local_time] * 4
    assert [t.day for t in local] == [12, 13, 14, 15]


def test_email_delivery_fires_every_minute_on_the_minute():
    times = fire_times("deliver_emails", "UTC", utc(2027, 3, 10, 12, 0, 30), 3)
    assert times == [utc(2027, 3, 10, 12, 1), utc(2027, 3, 10, 12, 2), utc(2027, 3, 10, 12, 3)]


def test_a_late_firing_still_belongs_to_its_slot_within_the_grace():
    probe = job()
    assert probe.slot(ZoneInfo("UTC"), utc(2027, 3, 10, 12, 0, 2), GRACE) == utc(2027, 3, 10, 12, 0)
    assert probe.slot(ZoneInfo("UTC"), utc(2027, 3, 10, 12, 0, 45), GRACE) is None


def test_the_registry_knows_every_job_and_names_them_for_an_unknown_one():
    assert [j.name for j in JOBS] == ["health", "deliver_emails", "weekly_emails", "reengagement", "at_risk_playbook",
                                        "churn_model", "playbooks", "backup", "erase_churned"]
    with pytest.raises(UnknownJob, match="unknown job 'nope'; the jobs are: health, deliver_emails"):
        JOBS.get("nope")


# Runs and the lock ----------------------------------------------------------------------------------------------


def only_run() -> JobRun:
    return db.session.scalars(select(JobRun)).one()


def test_a_run_is_recorded_with_its_counts_runner_and_times(ctx):
    assert runs.run(job(work=lambda context: {"customers": 3}), "manual", NOW) == "succeeded"
    run = only_run()
    assert (run.job, run.trigger, run.outcome, run.counts, run.error) == ("probe", "manual", "succeeded",
                                                                          {"customers": 3}, "")
    assert run.runner.endswith(f":{__import__('os').getpid()}") and run.started_at == NOW
    assert NOW <= run.finished_at < NOW + dt.timedelta(seconds=5)


def test_a_failed_run_records_the_error_without_secrets_and_rolls_back_its_work(ctx):
    def fails(context):
        db.session.add(JobLease(job="half-done", holder="x", expires_at=NOW))
        raise RuntimeError("cannot reach postgresql://portal:hunter2@db/portal with password=hunter2")

    assert runs.run(job(work=fails), "schedule", NOW) == "failed"
    run = only_run()
    assert run.outcome == "failed" and run.finished_at is not None
    assert run.error.startswith("RuntimeError: cannot reach postgresql://portal:***@db/portal with password=***")
    assert "test_jobs.py" in run.error and "in fails" in run.error and "hunter2" not in run.error
    assert db.session.get(JobLease, "half-done") is None
    assert db.session.scalar(select(func.count()).select_from(JobLease)) == 0  # the lock is released


def test_progress_updates_the_row_while_the_job_runs(ctx):
    seen = []

    def counts_up(context):
        for done in range(3):
            context.progress(done, 2)
            seen.append(db.session.execute(select(JobRun.progress_done, JobRun.progress_total)).one())
        return {}

    runs.run(job(work=counts_up), "manual", NOW)
    # The first call writes, the next is throttled, the last (done == total) always writes.
    assert [tuple(row) for row in seen] == [(0, 2), (0, 2), (2, 2)]


def test_one_runner_at_a_time_and_the_lock_frees_after_the_run(ctx):
    probe = job()
    first = runs.start(probe, "manual", NOW)
    assert first is not None
    assert runs.start(probe, "manual", NOW) is None  # held: nothing recorded
    assert runs.start(job("other"), "manual", NOW) is not None  # other jobs have their own lock
    assert runs.execute(first) == "succeeded"
    assert runs.run(probe, "manual", NOW) == "succeeded"
    assert db.session.scalar(select(func.count(JobRun.id)).where(JobRun.job == "probe")) == 2


def test_a_scheduled_slot_runs_once_even_when_a_second_process_fires_after_the_first_finished(ctx):
    slot = utc(2027, 3, 10, 12, 0)
    assert runs.run(job(), "schedule", slot + dt.timedelta(seconds=0.2), slot=slot) == "succeeded"
    assert runs.run(job(), "schedule", slot + dt.timedelta(seconds=0.9), slot=slot) is None
    assert runs.run(job(), "schedule", slot + dt.timedelta(minutes=1), slot=slot + dt.timedelta(minutes=1))
    assert db.session.scalar(select(func.count(JobRun.id))) == 2


@pytest.mark.parametrize("expires_in, taken", [(-1, True), (5, False)])
def test_a_lease_is_taken_over_only_once_it_expired(ctx, expires_in, taken):
    db.session.add(JobLease(job="probe", holder="crashed-host:4242:abcd", expires_at=NOW + dt.timedelta(minutes=expires_in)))
    db.session.commit()
    lease = locks.LeaseLock(db.engine, "probe", "here:1", dt.timedelta(minutes=10), NOW)
    assert lease.acquire() is taken
    db.session.expire_all()
    holder = db.session.get(JobLease, "probe")
    assert (holder.holder == lease.holder) is taken
    if taken:
        assert holder.expires_at == NOW + dt.timedelta(minutes=10)
        lease.release()
        assert db.session.scalar(select(func.count()).select_from(JobLease)) == 0


def test_a_run_left_running_by_a_dead_process_is_closed_by_the_next_run_and_shown_abandoned_meanwhile(ctx):
    dead = JobRun(job="probe", trigger="schedule", started_at=NOW - dt.timedelta(hours=2), outcome="running",
                  runner="gone:1")
    db.session.add(dead)
    db.session.commit()
    assert queries.shown_outcome(dead, job(), NOW) == "abandoned"
    assert queries.shown_outcome(dead, job(), NOW - dt.timedelta(hours=1, minutes=30)) == "running"
    dead_id = dead.id
    runs.run(job(), "manual", NOW)  # closes the session, as after every run
    dead = db.session.get(JobRun, dead_id)
    assert (dead.outcome, dead.error) == ("failed", runs.ABANDONED)


def test_the_playbook_and_health_jobs_run_through_the_runner(ctx):
    assert runs.run(JOBS.get("health"), "manual", NOW) == "succeeded"
    assert runs.run(JOBS.get("at_risk_playbook"), "manual", NOW) == "succeeded"
    counts = dict(db.session.execute(select(JobRun.job, JobRun.counts)).all())
    assert counts == {"health": {"customers": 0}, "at_risk_playbook": {"tasks": 0}}


# Two real processes -----------------------------------------------------------------------------------------------

WORKER = Path(__file__).with_name("job_worker.py")


def test_two_processes_firing_the_same_job_each_second_give_one_run_per_firing(app, database_url):
    """Both processes start their own scheduler with a job firing every second; each firing runs once."""
    processes = [subprocess.Popen([sys.executable, str(WORKER), database_url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        process.stdin.write("2.2\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    with app.app_context():
        rows = db.session.execute(select(JobRun.started_at, JobRun.runner, JobRun.outcome)
                                  .where(JobRun.job == "tick")).all()
    slots = [started.replace(microsecond=0) for started, _, _ in rows]
    assert len(rows) >= 2 and all(outcome == "succeeded" for _, _, outcome in rows)
    assert len(slots) == len(set(slots)), rows  # never two runs for one firing
    assert "skipped" in "".join(outputs)  # the other process did fire, and stood aside
    ran = [line for output in outputs for line in output.splitlines() if line.startswith("ran ")]
    assert len(ran) == len(rows)


# The factory -----------------------------------------------------------------------------------------------------


def test_the_factory_does_not_start_the_scheduler_under_tests(app):
    assert not scheduler.running(app)


def test_the_factory_starts_the_scheduler_when_enabled_and_it_can_be_shut_down(database_url):
    app = create_app({"TESTING": False, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": database_url,
                      "SCHEDULER_ENABLED": True, "PORTAL_TIMEZONE": "Europe/Paris"})
    try:
        assert scheduler.running(app)
        planned = {job.id: job for job in scheduler.state(app).scheduler.get_jobs()}
        assert set(planned) == {job.name for job in JOBS}
        assert str(planned["weekly_emails"].trigger.timezone) == "Europe/Paris"
    finally:
        scheduler.shutdown(app)
        with app.app_context():
            db.engine.dispose()
    assert not scheduler.running(app)


def test_the_factory_leaves_the_scheduler_off_when_disabled(database_url):
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": database_url, "SCHEDULER_ENABLED": False})
    assert not scheduler.running(app)


def test_a_manual_run_started_in_the_background_is_awaited(app):
    gate = threading.Event()
    scheduler.registry(app).add(job(work=lambda context: {"waited": int(gate.wait(5))}))
    with app.test_request_context():
        started = scheduler.run_now("probe")
        assert started is not None and scheduler.run_now("probe") is None
    gate.set()
    scheduler.wait(app, timeout=10)
    with app.app_context():
        assert (only_run().outcome, only_run().counts) == ("succeeded", {"waited": 1})


@pytest.mark.parametrize("command, reload, child, serves", [
    (None, None, False, True),            # gunicorn: no command line of ours
    ("upgrade", None, False, False),      # flask db upgrade, jobs run, customer-tracking ...
    ("run", False, False, True),          # flask run
    ("run", True, False, False),          # flask run --reload: the parent only watches files
    ("run", True, True, True),            # ... and its child serves
])
def test_only_a_serving_process_runs_the_scheduler(app, monkeypatch, command, reload, child, serves):
    if child:
        monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    else:
        monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    if command is None:
        assert serves_requests(app) is serves
        return
    with click.Context(click.Command(command), info_name=command) as context:
        context.params["reload"] = reload
        assert serves_requests(app) is serves
