"""What `flask backup create` and `flask backup restore` do, and the daily backup job.

A backup is the whole database plus the secret key: the key signs the unsubscribe and NPS links already mailed, so
a restore on a new host without it would break every one of them.
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from alembic.util import CommandError
from flask import current_app
from flask_migrate import upgrade
from sqlalchemy.exc import SQLAlchemyError

from .. import clock, files
from ..database import migrations
from ..extensions import db
from . import archive, databases, retention
from .archive import Backup, BackupError, Manifest

# Tables whose rows a portal writes by merely running (the scheduler, failed sign-ins): a database holding only
# these, and the default health settings that `db upgrade` adds, counts as empty for a restore.
RUNNING_ONLY = {"alembic_version", "job_runs", "job_leases", "login_attempts"}
# A temporary file older than this is left over from a backup that died; the job removes it.
STALE_PARTIAL = dt.timedelta(days=1)


def portal_version() -> str:
    try:
        return metadata.version("customer-success-portal")
    except metadata.PackageNotFoundError:
        return "unknown"


def configured_directory() -> Path:
    return Path(current_app.config["BACKUP_DIR"])


def usable_directory(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError(f"cannot create the backup folder {directory}: {error.strerror or error}") from None
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a folder")
    return directory


def create(directory: Path | None = None, now: dt.datetime | None = None) -> tuple[Path, Manifest]:
    """A complete backup in `directory` (default BACKUP_DIR), or BackupError and no file left behind."""
    directory = usable_directory(directory or configured_directory())
    kind = databases.kind_of(db.engine.url)
    now = now or clock.now()
    try:
        work = archive.temporary_file(directory)
    except OSError as error:
        raise BackupError(f"cannot write into {directory}: {error.strerror or error}") from None
    try:
        if kind == "postgresql":
            counts, revision = databases.dump_postgresql(db.engine, work, current_app.config.get("PG_BIN_DIR"))
        else:
            counts, revision = databases.dump_sqlite(Path(db.engine.url.database), work)
        secret_key = current_app.config.get("SECRET_KEY")
        manifest = Manifest(portal_version(), revision, kind, now.replace(microsecond=0), counts, bool(secret_key))
        path = archive.write(directory, manifest, secret_key or None, work)
    except OSError as error:
        raise BackupError(f"the backup was not written to {directory}: {error.strerror or error}") from None
    except (BackupError, SQLAlchemyError, databases.sqlite3.Error) as error:
        raise BackupError(f"the backup was not written to {directory}: {error}") from None
    finally:
        work.unlink(missing_ok=True)
    return path, manifest


# Restore ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    messages: list[str]


def holding_data(counts: dict[str, int]) -> dict[str, int]:
    """The tables that hold data a restore would replace."""
    return {name: count for name, count in counts.items()
            if count and name not in RUNNING_ONLY and not (name == "health_settings" and count <= 1)}


def check_schema(manifest: Manifest, source: Path) -> bool:
    """Refuse a backup of a schema this code does not know (a newer portal's); True when it is older than the code's
    and needs `db upgrade` after the restore."""
    if manifest.alembic_revision is None:
        raise BackupError(f"{source} holds a database without the portal's schema (no alembic revision)")
    script = migrations()
    try:
        script.get_revision(manifest.alembic_revision)
    except CommandError:
        raise BackupError(f"{source} is from a newer portal (schema {manifest.alembic_revision}; this code knows up "
                          f"to {script.get_current_head()}): restore it with that portal's code") from None
    return manifest.alembic_revision != script.get_current_head()


def restore(source: Path, force: bool = False) -> Restored:
    """Replace the configured database with the backup's, then put its secret key back where it belongs."""
    if not source.is_file():
        raise BackupError(f"{source} does not exist or is not a file")
    with Backup(source) as backup:
        manifest = backup.manifest
        kind = databases.kind_of(db.engine.url)
        if manifest.database != kind:
            raise BackupError(f"{source} is a backup of a {manifest.database} database; this portal uses {kind}")
        older = check_schema(manifest, source)
        db.session.remove()
        with db.engine.connect() as connection:
            present = holding_data(databases.row_counts(connection))
        if present and not force:
            tables = ", ".join(f"{name} {count}" for name, count in sorted(present.items()))
            raise BackupError(f"the database is not empty ({tables} rows); a restore replaces all of it: add --force")
        load(backup, kind)
        messages = [f"restored {sum(manifest.row_counts.values())} rows in {len(manifest.row_counts)} tables from "
                    f"{source} (made {manifest.created_at:%Y-%m-%d %H:%M} UTC)"]
        messages.append(restore_secret_key(backup.secret_key(), Path(current_app.instance_path) / "secret_key",
                                           current_app.config.get("SECRET_KEY")))
    if older:
        upgrade()
        messages.append(f"upgraded the schema from {manifest.alembic_revision} to {migrations().get_current_head()}")
    return Restored(manifest, messages)


def load(backup: Backup, kind: str) -> None:
    """The backup's database in place of the configured one, checked against the manifest's row counts."""
    engine = db.engine
    engine.dispose()
    folder = Path(engine.url.database).resolve().parent if kind == "sqlite" else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, prefix=".portal-restore-", suffix=".partial")
    os.close(handle)
    work = Path(name)
    try:
        backup.copy_data_to(work)
        if kind == "postgresql":
            databases.restore_postgresql(engine, work, set(backup.manifest.row_counts),
                                         current_app.config.get("PG_BIN_DIR"))
        else:
            databases.restore_sqlite(work, Path(engine.url.database))
    except OSError as error:
        raise BackupError(f"the restore failed: {error.strerror or error}") from None
    finally:
        work.unlink(missing_ok=True)
        engine.dispose()
    with engine.connect() as connection:
        counts = databases.row_counts(connection)
    expected = backup.manifest.row_counts
    differing = sorted(name for name in expected if counts.get(name) != expected[name])
    if differing:
        raise BackupError(f"the restored database does not match the backup's manifest (tables {', '.join(differing)})")


def restore_secret_key(key: str | None, key_file: Path, in_use: str | None) -> str:
    """Put the backup's key in `key_file` (instance/secret_key) when the portal takes its key from that file; when
    SECRET_KEY is configured otherwise (environment, instance/config.py), say whether it is the backup's."""
    if key is None:
        return "the backup holds no secret key: links mailed before it was made will not verify"
    file_key = key_file.read_text().strip() if key_file.is_file() else None
    if in_use != file_key:
        if in_use == key:
            return "the configured SECRET_KEY is the backup's: links mailed before the backup stay valid"
        return ("SECRET_KEY is configured and differs from the backup's key: links mailed before the backup will not "
                f"verify until SECRET_KEY is set to the backup's (tar -xOf BACKUP {archive.SECRET_KEY})")
    if file_key == key:
        return f"{key_file} already holds the backup's secret key"
    replaced = key_file.with_name("secret_key.replaced")
    key_file.replace(replaced)
    partial = key_file.with_name(".secret_key.partial")
    partial.write_text(key)
    partial.chmod(0o600)
    partial.replace(key_file)
    return (f"wrote the backup's secret key to {key_file} (the previous one is in {replaced.name}); restart the "
            "portal so that it signs with it")


# The daily job ------------------------------------------------------------------------------------------------

def prune(directory: Path, now: dt.datetime) -> retention.Plan:
    """Delete the backups the retention rule gives up and temporary files of backups that died. Only names this
    portal writes are looked at; anything else in the folder stays."""
    stored, stale = [], []
    for path in directory.iterdir():
        stamp = archive.stamp_of(path.name)
        if stamp is not None and path.is_file():
            stored.append(retention.Stored(path.name, *stamp))
        elif path.name.startswith((archive.PARTIAL_PREFIX, ".portal-restore-")) and path.name.endswith(
                archive.PARTIAL_SUFFIX) and now.timestamp() - path.stat().st_mtime > STALE_PARTIAL.total_seconds():
            stale.append(path)
    plan = retention.plan(stored, current_app.config["BACKUP_KEEP_DAILY"], current_app.config["BACKUP_KEEP_WEEKLY"],
                          clock.zone())
    for name in plan.delete:
        (directory / name).unlink(missing_ok=True)
    for path in stale:
        path.unlink(missing_ok=True)
    if plan.delete or stale:
        files.sync_directory(directory)
    return plan


def backup_job(context) -> dict[str, int]:
    context.progress(0, 1)
    path, _ = create(now=context.now)
    plan = prune(path.parent, context.now)
    return {"written": 1, "kept": len(plan.keep), "deleted": len(plan.delete)}
