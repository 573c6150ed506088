"""`customer-tracking`: parity with the early-access script, and one-line errors that change nothing."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import zipfile

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditLog, Customer, Engagement, HealthScore, Onboarding



def add(tracking, email="dev@acme.example", org="Acme", login="acme-dev", cohort="Beta", industry="SaaS", size=12):
    result = tracking("add-customer", email, org, login, cohort, industry, size)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def snapshot(app):
    """Everything a bad command must leave alone."""
    with app.app_context():
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Customer, Onboarding, Engagement, HealthScore, AuditLog)
        } | {"steps": db.session.execute(select(Onboarding.id, *Onboarding.__table__.c)).all()}


def test_add_customer_prints_the_new_id_and_scores_it(app, tracking):
    assert add(tracking) == "c1001"
    assert add(tracking, "two@acme.example", login="acme-two") == "c1002"
    with app.app_context():
        customer = db.session.get(Customer, 1)
        assert (customer.email, customer.team_size, customer.onboarding.public_id) == ("dev@acme.example", 12, "o1001")
        score = db.session.scalars(select(HealthScore).filter_by(customer_id=1)).one()
        assert (score.score, score.status, score.stage) == (0, "at_risk", "new_signup")
        assert db.session.scalars(select(AuditLog).filter_by(record_id="c1001", actor="cli")).first()


def test_update_onboarding_sets_times_and_completion(app, tracking):
    add(tracking)
    for step in ("welcome_email_sent", "account_created", "github_action_installed", "first_issue_tagged"):
        assert tracking("update-onboarding", "c1001", step, "true").exit_code == 0
    with app.app_context():
        onboarding = db.session.get(Onboarding, 1)
        assert onboarding.account_created_at is not None and onboarding.completed_date is None
    result = tracking("update-onboarding", "c1001", "first_pr_generated", "TRUE")
    assert result.exit_code == 0
    with app.app_context():
        onboarding = db.session.get(Onboarding, 1)
        assert onboarding.completed_date is not None and onboarding.days_to_complete == 0
        assert db.session.scalars(select(HealthScore)).one().stage == "regular_usage"
    assert tracking("update-onboarding", "c1001", "account_created", "false").exit_code == 0
    with app.app_context():
        onboarding = db.session.get(Onboarding, 1)
        assert onboarding.completed_date is None and onboarding.days_to_complete is None
        assert onboarding.account_created_at is None
        changes = db.session.scalars(select(AuditLog.field).filter_by(record_id="o1001", actor="cli")).all()
        assert {"account_created", "completed_date", "days_to_complete"} <= set(changes)


def test_record_engagement_adds_to_todays_row(app, tracking):
    add(tracking)
    assert tracking("record-engagement", "c1001", 3, 2, 1, 1, 0).exit_code == 0
    result = tracking("record-engagement", "c1001", 1, 1, 1, 0, 2)
    assert result.exit_code == 0
    assert "issues_tagged=4" in result.stdout
    with app.app_context():
        row = db.session.scalars(select(Engagement)).one()
        assert (row.issues_tagged, row.prs_generated, row.prs_merged, row.prs_rejected, row.support_requests) == (4, 3, 2, 1, 2)
        score = db.session.scalars(select(HealthScore)).one()
        # 0 steps; 1 active day = 5; 66% x 0.25 = 16.5; 3 PRs = 6 -> 27
        assert (score.days_active, score.success_rate, score.score) == (1, 66, 27)


def test_record_engagement_refuses_a_total_its_column_cannot_hold(app, tracking):
    add(tracking)
    assert tracking("record-engagement", "c1001", 2147483647, 0, 0, 0, 0).exit_code == 0
    result = tracking("record-engagement", "c1001", 1, 0, 0, 0, 0)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "issues_tagged would pass 2,147,483,647 for c1001" in result.stderr
    with app.app_context():
        assert db.session.scalars(select(Engagement.issues_tagged)).one() == 2147483647


def test_onboarding_report(tracking):
    add(tracking)
    add(tracking, "b@beta.example", "Beta", "beta-co")
    tracking("update-onboarding", "c1001", "welcome_email_sent", "true")
    result = tracking("onboarding-report")
    assert result.exit_code == 0
    assert "Total customers:       2" in result.stdout
    assert "Completion rate:       0%" in result.stdout
    assert "welcome_email_sent             1   50%" in result.stdout


def test_engagement_report_window(app, tracking):
    add(tracking)
    tracking("record-engagement", "c1001", 2, 2, 1, 1, 0)
    with app.app_context():
        old = Engagement(customer_id=1, date=dt.date.today() - dt.timedelta(days=7), issues_tagged=50,
                         prs_generated=0, prs_merged=0, prs_rejected=0, support_requests=0)
        db.session.add(old)
        db.session.commit()
    seven = tracking("engagement-report")
    eight = tracking("engagement-report", 8)
    assert seven.exit_code == eight.exit_code == 0
    line = [line for line in seven.stdout.splitlines() if line.startswith("c1001")][0]
    assert line.split()[2:] == ["2", "2", "1", "1", "0", "50%"]
    assert [line for line in eight.stdout.splitlines() if line.startswith("c1001")][0].split()[2] == "52"


def test_export_data_writes_the_four_files(tracking, tmp_path):
    add(tracking, org="=HYPERLINK(evil)")
    target = tmp_path / "out.zip"
    result = tracking("export-data", "--output", target)
    assert result.exit_code == 0 and result.stdout.strip() == str(target.resolve())
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == ["combined_metrics.csv", "customers.csv", "engagement.csv", "onboarding.csv"]
        customers = archive.read("customers.csv").decode()
    assert customers.splitlines()[0] == "id,email,organization,github_username,signup_date,cohort,industry,team_size,status"
    assert "'=HYPERLINK(evil)" in customers


def test_export_data_on_a_full_disk_says_so_and_leaves_no_file(app, tracking, database_url, tmp_path):
    """A file-size limit makes writes fail with EFBIG as a full disk fails them with ENOSPC."""
    import resource
    import signal

    import uuid

    for number in range(200):  # names that do not compress away
        add(tracking, org=uuid.uuid4().hex * 4, email=f"ops{number}@example.com", login=f"org-{number}")

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails rather than the process being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (4_096, 4_096))

    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "x", "SCHEDULER_ENABLED": "false"}
    script = os.path.join(os.path.dirname(sys.executable), "customer-tracking")
    target = tmp_path / "out" / "export.zip"
    target.parent.mkdir()
    result = subprocess.run([script, "export-data", "--output", str(target)], capture_output=True, text=True,
                            env=env, cwd=tmp_path, preexec_fn=small_disk)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"customer-tracking: cannot write {target}: File too large; nothing was written")
    assert list(target.parent.iterdir()) == []


def test_api_key_prints_a_new_key_and_stores_only_its_hash(app, tracking):
    add(tracking)
    first = tracking("api-key", "c1001").stdout.strip()
    second = tracking("api-key", "c1001").stdout.strip()
    assert first != second and second.startswith("ck_")
    with app.app_context():
        stored = db.session.get(Customer, 1).api_key_hash
        assert stored and second not in stored and len(stored) == 64


BAD_COMMANDS = [
    ("unknown customer", ("update-onboarding", "c9999", "account_created", "true"), "unknown customer"),
    ("not a customer id", ("record-engagement", "x1", 1, 1, 1, 0, 0), "unknown customer"),
    ("unknown step", ("update-onboarding", "c1001", "first_deploy", "true"), "unknown step"),
    ("step value", ("update-onboarding", "c1001", "account_created", "yes"), "true or false"),
    ("negative count", ("record-engagement", "c1001", 1, -1, 0, 0, 0), "prs_generated must be at least 0"),
    ("non-integer count", ("record-engagement", "c1001", 1, "2.5", 0, 0, 0), "whole number"),
    ("invalid email", ("add-customer", "not-an-email", "Org", "org-x", "GA", "SaaS", 3), "invalid email"),
    ("duplicate email", ("add-customer", "DEV@acme.example", "Org", "org-x", "GA", "SaaS", 3), "already exists"),
    ("duplicate login", ("add-customer", "new@x.example", "Org", "ACME-Dev", "GA", "SaaS", 3), "already used"),
    ("team size 0", ("add-customer", "new@x.example", "Org", "org-x", "GA", "SaaS", 0), "team_size must be at least 1"),
    ("team size text", ("add-customer", "new@x.example", "Org", "org-x", "GA", "SaaS", "ten"), "whole number"),
    ("bad login", ("add-customer", "new@x.example", "Org", "-bad login", "GA", "SaaS", 3), "invalid GitHub login"),
    ("days zero", ("engagement-report", 0), "DAYS must be at least 1"),
    ("days negative", ("engagement-report", -3), "DAYS must be at least 1"),
    ("days text", ("engagement-report", "week"), "whole number"),
    ("days past a century", ("engagement-report", 36_526), "DAYS must be at most 36,525"),
    ("days of billions", ("engagement-report", 2_000_000_000), "DAYS must be from 1 to 36,525"),
    ("count past an INTEGER", ("record-engagement", "c1001", 2**31, 0, 0, 0, 0),
     "issues_tagged must be at most 2,147,483,647"),
    ("missing argument", ("add-customer", "a@b.example"), "Missing argument"),
    ("unknown command", ("delete-everything",), "No such command"),
    ("import missing file", ("import-data", "/nonexistent/file.csv"), "does not exist"),
]


@pytest.mark.parametrize("args, message", [case[1:] for case in BAD_COMMANDS], ids=[case[0] for case in BAD_COMMANDS])
def test_bad_input_is_one_line_on_stderr_and_changes_nothing(app, tracking, args, message):
    add(tracking)
    before = snapshot(app)
    result = tracking(*args)
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert snapshot(app) == before


def test_every_command_has_help(tracking):
    for command in ("add-customer", "update-onboarding", "record-engagement", "onboarding-report",
                    "engagement-report", "export-data", "import-data", "api-key"):
        result = tracking(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout


def test_console_script_uses_database_url(database_url, app, tmp_path):
    """The installed `customer-tracking` works on whatever DATABASE_URL names, as the script did."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "x", "SCHEDULER_ENABLED": "false"}
    script = os.path.join(os.path.dirname(sys.executable), "customer-tracking")
    added = subprocess.run([script, "add-customer", "ops@zeta.example", "Zeta", "zeta", "GA", "Media", "4"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert (added.returncode, added.stdout.strip()) == (0, "c1001"), added.stderr
    bad = subprocess.run([script, "add-customer", "ops@zeta.example", "Zeta", "zeta2", "GA", "Media", "4"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "customer-tracking: a customer with email ops@zeta.example already exists"
    with app.app_context():
        assert db.session.scalar(select(func.count(Customer.id))) == 1


HEADER = b"id,email,organization,github_username,signup_date,cohort,industry,team_size,status"


@pytest.mark.parametrize("name, content", [("customers.csv", b"id,email\n\xff\xfe\n"),
                                           ("customers.csv", HEADER + b'\n"' + b"x" * 200_000 + b'"\n')])
def test_unreadable_import_files_are_one_line(tracking, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    result = tracking("import-data", path)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("customer-tracking: cannot read customers.csv")


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path):
    """No traceback when the database is down or its file cannot be opened: one line naming why, exit 1."""
    script = os.path.join(os.path.dirname(sys.executable), "customer-tracking")
    for url, why in (("postgresql+psycopg://postgres@127.0.0.1:1/portal", "Connection refused"),
                     (f"sqlite:///{tmp_path}/missing/portal.db", "unable to open database file")):
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "x", "SCHEDULER_ENABLED": "false"}
        result = subprocess.run([script, "onboarding-report"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("customer-tracking: the database cannot be used (OperationalError: ")
        assert why in result.stderr and result.stderr.rstrip().endswith("; nothing was changed")
