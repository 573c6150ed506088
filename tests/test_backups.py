"""Backups: a restore into a fresh database gives back the same data, bad files and full disks are refused cleanly,
and the daily job keeps what the retention rule says."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from portal.backups import archive, databases, retention, service
from portal.backups.retention import Stored
from portal.extensions import db
from portal.jobs import runs
from portal.jobs.scheduler import scheduler
from portal.models import Customer, JobRun
from portal.transfer import exports

from . import seed
from .conftest import make_app

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


def snapshot(app) -> dict:
    """What must survive a backup and restore: the export zip's files (the export-data command's), every table's
    row count, and every row of every table."""
    with app.app_context():
        buffer = io.BytesIO()
        exports.write_zip(buffer)
        with zipfile.ZipFile(buffer) as archived:  # per file: each member's header carries the time it was written
            files = {name: archived.read(name) for name in archived.namelist()}
        with db.engine.connect() as connection:
            counts = databases.row_counts(connection)
            rows = {table.name: connection.execute(select(table).order_by(*table.primary_key.columns)).all()
                    for table in db.metadata.sorted_tables}
        db.session.remove()
    return {"export": files, "counts": counts, "rows": rows}


def fresh_app(databases_pool, migrate_to: str = "head", **extra):
    restored = make_app(databases_pool.new(), **extra)
    with restored.app_context():
        upgrade(revision=migrate_to)
        db.engine.dispose()
    return restored


def create(app, directory: Path):
    result = app.test_cli_runner().invoke(args=["backup", "create", "--to", str(directory)])
    with app.app_context():
        db.engine.dispose()
    assert result.exit_code == 0, result.output
    return Path(result.output.strip())


def restore(app, path: Path, *options: str):
    result = app.test_cli_runner().invoke(args=["backup", "restore", str(path), *options])
    with app.app_context():
        db.engine.dispose()
    return result


def one_error_line(result) -> str:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def seeded(app):
    with app.app_context():
        seed.every_table()
        db.session.remove()
    return app


def test_a_backup_restored_into_a_fresh_database_gives_the_same_export_counts_and_rows(seeded, databases, tmp_path):
    before = snapshot(seeded)
    path = create(seeded, tmp_path)
    assert path.parent == tmp_path and archive.stamp_of(path.name) is not None
    assert os.stat(path).st_mode & 0o777 == 0o600  # it holds the secret key
    with archive.Backup(path) as backup:
        assert backup.manifest.row_counts == before["counts"]
        assert backup.manifest.alembic_revision == service.migrations().get_current_head()
        assert backup.secret_key() == "test-secret"

    restored = fresh_app(databases)
    result = restore(restored, path)
    assert result.exit_code == 0, result.output
    assert "restored" in result.output and "the configured SECRET_KEY is the backup's" in result.output

    after = snapshot(restored)
    assert after["export"] == before["export"]
    assert after["counts"] == before["counts"]
    assert after["rows"] == before["rows"]
    with restored.app_context():  # the ids keep counting from where they were (PostgreSQL's sequences)
        customer = Customer(email="new@example.com", organization="New", github_username="new-one",
                            signup_date=dt.date(2026, 12, 1))
        db.session.add(customer)
        db.session.commit()
        assert customer.id == max(row.id for row in before["rows"]["customers"]) + 1
        db.session.remove()
        db.engine.dispose()


def test_a_restore_refuses_a_database_that_holds_data_unless_forced(seeded, app, tmp_path):
    path = create(seeded, tmp_path)
    with app.app_context():
        db.session.execute(db.delete(Customer).where(Customer.id == 1))
        db.session.commit()
        db.session.remove()
    line = one_error_line(restore(app, path))
    assert "the database is not empty" in line and "customers 39" in line and "add --force" in line
    with app.app_context():
        assert db.session.scalar(select(func.count(Customer.id))) == 39  # nothing changed
        db.session.remove()

    assert restore(app, path, "--force").exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(Customer.id))) == 40
        db.session.remove()


def test_a_file_that_is_not_a_backup_is_refused_in_one_line(app, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    assert "is not a portal backup" in one_error_line(restore(app, junk))
    assert "does not exist" in one_error_line(restore(app, tmp_path / "missing.tar"))

    foreign = tmp_path / "foreign.tar"
    with tarfile.open(foreign, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        content = json.dumps({"format": "something else"}).encode()
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    assert "is not a portal backup" in one_error_line(restore(app, foreign))


def forged(tmp_path: Path, **changes) -> Path:
    """A well-formed backup file with a manifest saying what the test needs."""
    fields = dict(portal_version="0.1.0", alembic_revision=service.migrations().get_current_head(),
                  database="sqlite", created_at=dt.datetime(2026, 12, 1, tzinfo=UTC), row_counts={},
                  has_secret_key=False)
    manifest = archive.Manifest(**{**fields, **changes})
    data = tmp_path / "data"
    data.write_bytes(b"")
    folder = tmp_path / "forged"
    folder.mkdir(exist_ok=True)
    return archive.write(folder, manifest, None, data)


def test_a_backup_of_the_other_kind_of_database_or_a_newer_schema_is_refused(app, tmp_path):
    with app.app_context():
        kind = db.engine.dialect.name
    other = "sqlite" if kind == "postgresql" else "postgresql"
    line = one_error_line(restore(app, forged(tmp_path, database=other)))
    assert f"is a backup of a {other} database; this portal uses {kind}" in line
    line = one_error_line(restore(app, forged(tmp_path, database=kind, alembic_revision="0099_from_the_future")))
    assert "is from a newer portal (schema 0099_from_the_future" in line


def test_a_backup_of_an_older_schema_is_restored_and_upgraded(databases, tmp_path):
    older = fresh_app(databases, migrate_to="0008_events_payload_lz4")
    path = create(older, tmp_path)
    restored = fresh_app(databases)
    result = restore(restored, path)
    assert result.exit_code == 0, result.output
    head = service.migrations().get_current_head()
    assert f"upgraded the schema from 0008_events_payload_lz4 to {head}" in result.output
    with restored.app_context():
        assert db.session.scalar(db.text("SELECT version_num FROM alembic_version")) == head
        db.session.remove()
        db.engine.dispose()


def limited_writes(limit: int):
    """A child process whose files cannot grow past `limit` bytes: its writes fail with EFBIG, as on a full disk."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited by pg_dump: a write fails rather than kills
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_leaves_no_backup_behind_and_says_so_in_one_line(seeded, database_url, tmp_path):
    target = tmp_path / "backups"
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret", "SCHEDULER_ENABLED": "false"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "backup", "create", "--to", str(target)],
                            cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=limited_writes(32_768),
                            timeout=120)
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the backup was not written to" in lines[0], result.stderr
    assert list(target.iterdir()) == []  # neither a backup nor a temporary file


def test_a_backup_folder_that_cannot_be_created_is_one_line(app, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_error_line(app.test_cli_runner().invoke(args=["backup", "create", "--to", str(blocker / "sub")]))
    assert "cannot create the backup folder" in line


# The secret key -----------------------------------------------------------------------------------------------

def test_the_backups_key_replaces_the_generated_one_when_the_portal_reads_its_key_from_the_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("generated-on-the-new-host")
    message = service.restore_secret_key("the-old-key", key_file, "generated-on-the-new-host")
    assert "wrote the backup's secret key" in message and "restart the portal" in message
    assert key_file.read_text() == "the-old-key" and os.stat(key_file).st_mode & 0o777 == 0o600
    assert (tmp_path / "secret_key.replaced").read_text() == "generated-on-the-new-host"
    assert "already holds the backup's secret key" in service.restore_secret_key("the-old-key", key_file, "the-old-key")


def test_a_configured_secret_key_is_left_alone_and_a_different_one_is_pointed_out(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("file-key")
    message = service.restore_secret_key("the-old-key", key_file, "from-the-environment")
    assert "SECRET_KEY is configured and differs from the backup's key" in message
    assert key_file.read_text() == "file-key"
    assert "stay valid" in service.restore_secret_key("the-old-key", key_file, "the-old-key")
    assert "holds no secret key" in service.restore_secret_key(None, key_file, "file-key")


# Retention ----------------------------------------------------------------------------------------------------

def daily(first: dt.date, days: int) -> list[Stored]:
    return [Stored(f"{first + dt.timedelta(days=n)}", dt.datetime.combine(first + dt.timedelta(days=n), dt.time(2, 30),
                                                                        UTC)) for n in range(days)]


def test_retention_keeps_the_newest_of_each_of_the_last_days_and_weeks():
    backups = daily(dt.date(2027, 1, 1), 60)  # 2027-01-01 to 2027-03-01, one a day
    plan = retention.plan(backups, keep_daily=7, keep_weekly=4)
    days = [f"2027-02-{day}" for day in range(23, 29)] + ["2027-03-01"]
    # The newest of each ISO week: Monday 2027-03-01 (week 9), then the Sundays 02-28, 02-21, 02-14.
    assert plan.keep == ["2027-03-01", *reversed(days[:-1]), "2027-02-21", "2027-02-14"]
    assert len(plan.delete) == 60 - 9 and "2027-02-22" in plan.delete and "2027-01-01" in plan.delete


def test_retention_counts_days_that_have_a_backup_and_keeps_the_newest_of_a_day():
    morning = Stored("morning", dt.datetime(2027, 3, 1, 2, 30, tzinfo=UTC))
    before_upgrade = Stored("before-upgrade", dt.datetime(2027, 3, 1, 14, 0, tzinfo=UTC))
    same_second = Stored("same-second", dt.datetime(2027, 3, 1, 14, 0, tzinfo=UTC), number=2)
    long_ago = Stored("long-ago", dt.datetime(2026, 6, 1, 2, 30, tzinfo=UTC))
    plan = retention.plan([morning, long_ago, before_upgrade, same_second], keep_daily=2, keep_weekly=0)
    assert plan.keep == ["same-second", "long-ago"]  # a gap of months does not age the older one out
    assert plan.delete == ["before-upgrade", "morning"]


def test_retention_days_are_the_portals_calendar_days():
    late = Stored("late", dt.datetime(2027, 3, 1, 23, 30, tzinfo=UTC))
    early = Stored("early", dt.datetime(2027, 3, 1, 1, 0, tzinfo=UTC))
    assert retention.plan([late, early], 2, 0).keep == ["late"]  # one day in UTC
    tokyo = dt.timezone(dt.timedelta(hours=9))  # 23:30 UTC is the next day there
    assert retention.plan([late, early], 1, 0, tokyo).keep == ["late"]
    assert retention.plan([late, early], 2, 0, tokyo).keep == ["late", "early"]


@pytest.mark.parametrize("keep_daily, keep_weekly", [(0, 4), (7, -1)])
def test_retention_never_deletes_the_newest(keep_daily, keep_weekly):
    with pytest.raises(ValueError, match="BACKUP_KEEP_"):
        retention.plan(daily(dt.date(2027, 1, 1), 3), keep_daily, keep_weekly)


# The job ------------------------------------------------------------------------------------------------------

def test_the_backup_job_writes_one_prunes_old_ones_and_leaves_other_files_alone(app, tmp_path):
    app.config.update(BACKUP_DIR=str(tmp_path), BACKUP_KEEP_DAILY=2, BACKUP_KEEP_WEEKLY=1)
    old = ["portal-backup-20261101T023000Z.tar", "portal-backup-20261102T023000Z.tar",
           "portal-backup-20261103T023000Z.tar"]
    others = ["notes.txt", "portal-backup-latest.tar", "portal-backup-20261101T023000Z.tar.gz"]
    for name in old + others:
        (tmp_path / name).write_text("x")
    stale = tmp_path / ".portal-backup-died.partial"
    stale.write_text("half")
    os.utime(stale, (0, 0))
    with app.app_context():
        job = scheduler.registry(app).get("backup")
        assert job.schedule == "Daily at 02:30"
        now = dt.datetime.now(UTC)
        assert runs.run(job, "manual", now) == "succeeded"
        run = db.session.scalars(select(JobRun).where(JobRun.job == "backup")).one()
        assert run.counts == {"written": 1, "kept": 2, "deleted": 2}
        db.session.remove()
    backups = sorted(path.name for path in tmp_path.iterdir() if archive.stamp_of(path.name))
    assert len(backups) == 2 and backups[0] == "portal-backup-20261103T023000Z.tar"
    assert archive.stamp_of(backups[1])[0] == now.replace(microsecond=0)
    assert all((tmp_path / name).exists() for name in others) and not stale.exists()
