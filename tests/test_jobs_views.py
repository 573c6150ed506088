"""The jobs page (admin only): schedules, next and last runs, run-now, live progress; and the `jobs` commands."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.registry import Job
from portal.jobs.scheduler import scheduler
from portal.jobs.tasks import STANDARD_JOBS as JOBS
from portal.models import AuditLog, JobRun
from tests.conftest import csrf_token

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def probe(app):
    """A test-only job, in this test's app only: it reports progress, then waits for the test to let it finish."""
    gate, reached = threading.Event(), threading.Event()

    def work(context):
        context.progress(1, 3)
        reached.set()
        if not gate.wait(10):
            raise TimeoutError("the test never let the job finish")
        return {"items": 3}

    scheduler.registry(app).add(Job("probe", "Counts to three.", "Every minute", {"minute": "*"}, work))
    yield gate, reached
    gate.set()
    scheduler.wait(app, timeout=10)


def add_runs(app, count: int, **values) -> None:
    with app.app_context():
        for number in range(count):
            db.session.add(JobRun(job="health", trigger="schedule", outcome="succeeded",
                                  started_at=NOW - dt.timedelta(hours=count - number), **values))
        db.session.commit()


def runs_of(app, name: str) -> list[JobRun]:
    with app.app_context():
        return db.session.scalars(select(JobRun).where(JobRun.job == name)).all()


def test_the_page_lists_every_job_with_its_schedule_next_run_and_last_outcome(app, client, auth):
    add_runs(app, 1, counts={"customers": 12}, finished_at=NOW)
    auth.login("admin")
    html = client.get("/jobs").get_data(as_text=True)
    for name in ("health", "deliver_emails", "weekly_emails", "reengagement", "at_risk_playbook", "churn_model",
                 "playbooks", "backup", "erase_churned"):
        assert f'id="job-{name}"' in html
    assert "Mondays at 08:00" in html and "Customers 12" in html
    # Named in words, the name the command line and the logs use beside it; the runs by their job's words.
    assert '>At-risk tasks</a> <code class="muted">at_risk_playbook</code>' in html
    assert '>Weekly emails</a> <code class="muted">weekly_emails</code>' in html
    assert ">Health recalculation</a></td>" in html
    assert 'class="badge outcome-succeeded"' in html
    assert html.count("Run now") == len(JOBS) and 'href="/jobs"' in html  # in the navigation
    assert 'hx-trigger="every 1s"' not in html  # nothing runs: nothing polls


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_admins_see_or_run_jobs(client, auth, role):
    auth.login(role)
    assert client.get("/jobs").status_code == 403
    assert client.get("/jobs/health").status_code == 403
    assert client.post("/jobs/health/run", data={"csrf_token": csrf_token(client, "/")}).status_code == 403
    assert 'href="/jobs"' not in client.get("/").get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/jobs").status_code == 302


def test_run_now_needs_the_csrf_token(app, client, auth):
    auth.login("admin")
    assert client.post("/jobs/health/run").status_code == 400
    assert runs_of(app, "health") == []


def test_an_unknown_job_is_404(client, auth):
    auth.login("admin")
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/jobs/nope/run", data={"csrf_token": csrf_token(client, "/jobs")}).status_code == 404


def test_run_now_runs_the_job_in_the_background_records_it_and_audits_who_asked(app, client, auth):
    auth.login("admin")
    response = client.post("/jobs/health/run", data={"csrf_token": csrf_token(client, "/jobs")})
    assert response.status_code == 303 and response.headers["Location"].endswith("/jobs")
    scheduler.wait(app, timeout=10)
    [run] = runs_of(app, "health")
    assert (run.trigger, run.outcome, run.counts) == ("manual", "succeeded", {"customers": 0})
    with app.app_context():
        audit = db.session.scalars(select(AuditLog).where(AuditLog.table_name == "job_runs")).one()
        assert (audit.actor, audit.record_id) == ("Admin User", f"health/{run.id}")
    assert "health started." in client.get("/jobs").get_data(as_text=True)


def test_progress_is_polled_while_the_job_runs_and_polling_stops_when_it_ends(app, client, auth, probe):
    gate, reached = probe
    auth.login("admin")
    token = csrf_token(client, "/jobs")
    started = client.post("/jobs/probe/run", data={"csrf_token": token}, headers={"HX-Request": "true"})
    body = started.get_data(as_text=True)
    assert started.status_code == 200
    assert body.count('<article') == 1 and 'hx-target="this"' in body and 'hx-trigger="every 1s"' in body
    assert "probe started." in body
    assert reached.wait(10)
    poll = client.get("/jobs/probe", headers={"HX-Request": "true"})
    fragment = poll.get_data(as_text=True)
    assert "HX-Request" in poll.headers["Vary"] and "<html" not in fragment
    assert '<progress value="1" max="3"></progress> 1 of 3' in fragment and 'hx-trigger="every 1s"' in fragment

    again = client.post("/jobs/probe/run", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert "probe is already running" in again.get_data(as_text=True)
    assert len(runs_of(app, "probe")) == 1

    gate.set()
    scheduler.wait(app, timeout=10)
    assert "HX-Trigger" not in poll.headers
    finished = client.get("/jobs/probe", headers={"HX-Request": "true"})
    done = finished.get_data(as_text=True)
    assert 'hx-trigger' not in done and "outcome-succeeded" in done
    assert finished.headers["HX-Trigger"] == "job-runs-changed"  # the runs list reloads itself
    whole = client.get("/jobs/probe").get_data(as_text=True)
    assert "<html" in whole and "Items 3" in whole  # the job's own page, with its runs


def test_runs_are_paged_newest_first_and_the_pager_swaps_the_list(app, client, auth):
    add_runs(app, 25)
    auth.login("admin")
    page = client.get("/jobs?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert page.lstrip().startswith('<section id="job-runs"') and "25 in all · page 2 of 2" in page
    assert page.count("<tr>") == 6  # the header and five runs
    assert 'hx-target="#job-runs"' in client.get("/jobs").get_data(as_text=True)


def test_a_run_left_running_by_a_dead_process_shows_as_abandoned(app, client, auth):
    add_runs(app, 1)
    with app.app_context():
        db.session.add(JobRun(job="health", trigger="schedule", outcome="running", runner="gone:1",
                              started_at=NOW - dt.timedelta(hours=3)))
        db.session.commit()
    auth.login("admin")
    html = client.get("/jobs/health").get_data(as_text=True)
    assert "outcome-abandoned" in html and 'hx-trigger="every 1s"' not in html


# The `jobs` commands ----------------------------------------------------------------------------------------------


def test_jobs_list_shows_each_job(runner):
    result = runner.invoke(args=["jobs", "list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["health", "deliver_emails", "weekly_emails", "reengagement",
                                                   "at_risk_playbook", "churn_model", "playbooks", "backup",
                                                   "erase_churned"]
    assert "never run" in lines[0] and "next 20" in lines[0]


def test_jobs_run_records_a_manual_run(app, runner):
    result = runner.invoke(args=["jobs", "run", "health"])
    assert (result.exit_code, result.output) == (0, "health succeeded: customers 0\n")
    assert [(run.trigger, run.outcome) for run in runs_of(app, "health")] == [("manual", "succeeded")]
    assert "succeeded" in runner.invoke(args=["jobs", "list"]).output.splitlines()[0]


def test_jobs_run_of_an_unknown_job_fails_in_one_line(runner):
    result = runner.invoke(args=["jobs", "run", "nope"])
    assert result.exit_code == 1
    assert result.output == ("Error: unknown job 'nope'; the jobs are: health, deliver_emails, weekly_emails, "
                             "reengagement, at_risk_playbook, churn_model, playbooks, backup, erase_churned\n")


def test_jobs_run_reports_a_failure_and_a_held_lock(app, runner, probe):
    def fails(context):
        raise ValueError("no such thing")

    scheduler.registry(app).add(Job("broken", "Fails.", "Never", {"minute": "*"}, fails))
    result = runner.invoke(args=["jobs", "run", "broken"])
    assert result.exit_code == 1 and result.output.startswith("Error: broken failed: ValueError: no such thing")
    assert len(result.output.splitlines()) == 1

    gate, reached = probe
    with app.test_request_context():
        assert scheduler.run_now("probe") is not None
    assert reached.wait(10)
    result = runner.invoke(args=["jobs", "run", "probe"])
    assert (result.exit_code, result.output) == (1, "Error: probe is already running in another process; nothing done\n")
    gate.set()
    scheduler.wait(app, timeout=10)


def test_a_jobs_page_lists_its_own_runs_and_pages_them_from_the_index(app, client, auth):
    add_runs(app, 21)
    with app.app_context():
        db.session.add(JobRun(job="at_risk_playbook", trigger="manual", outcome="succeeded", started_at=NOW))
        db.session.commit()
    auth.login("admin")
    html = client.get("/jobs/health").get_data(as_text=True)
    assert "21 in all · page 1 of 2" in html and 'href="/jobs?job=health&amp;page=2"' in html
    fragment = client.get("/jobs?job=health&page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "21 in all · page 2 of 2" in fragment and "at_risk_playbook" not in fragment
