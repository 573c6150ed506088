"""Dumping and restoring each kind of database, with no Flask: PostgreSQL through pg_dump and pg_restore, SQLite
through its online backup API. Both read one consistent snapshot while the portal keeps running, and the row
counts of the manifest are taken from that same snapshot."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from .archive import BackupError

POSTGRESQL_BIN = Path("/usr/lib/postgresql")
# A restore waits this long for a table another process holds (a running portal) before it gives up.
LOCK_TIMEOUT = "30s"


def kind_of(url: URL) -> str:
    backend = url.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise BackupError(f"backups support PostgreSQL and SQLite, not {backend}")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return backend


def row_counts(connection: Connection) -> dict[str, int]:
    """The number of rows of every table, alembic_version too."""
    names = sorted(inspect(connection).get_table_names())
    return {name: connection.scalar(select(func.count()).select_from(table(name))) for name in names}


def revision_of(connection: Connection, counts: dict[str, int]) -> str | None:
    if not counts.get("alembic_version"):
        return None
    return connection.scalar(text("SELECT version_num FROM alembic_version"))


# PostgreSQL ---------------------------------------------------------------------------------------------------

def tool(name: str, bin_dir: str | None = None) -> str:
    """pg_dump or pg_restore: from the configured folder, else on the PATH, else the newest of Debian's
    /usr/lib/postgresql/<version>/bin (they are not on the PATH there when only the server is installed)."""
    if bin_dir:
        candidate = Path(bin_dir) / name
        if not candidate.is_file():
            raise BackupError(f"{name} is not in PG_BIN_DIR ({bin_dir})")
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(POSTGRESQL_BIN.glob(f"*/bin/{name}"),
                      key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)])
    if versions:
        return str(versions[-1])
    raise BackupError(f"{name} was not found: install the PostgreSQL client tools or set PG_BIN_DIR")


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """The URL as libpq reads it, and the environment for the tools: the password goes in PGPASSWORD, not on a
    command line that every user of the host can see."""
    env = {**os.environ}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    target = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return target, env


def run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    name = Path(command[0]).name
    if result.returncode < 0:  # SIGXFSZ when a file-size limit is hit, SIGKILL from the OOM killer...
        raise BackupError(f"{name} was stopped by {signal.Signals(-result.returncode).name}")
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()] or lines
        raise BackupError(f"{name} failed: {errors[0] if errors else f'exit status {result.returncode}'}")


def dump_postgresql(engine: Engine, target: Path, bin_dir: str | None) -> tuple[dict[str, int], str | None]:
    """pg_dump's custom format of the whole database into `target`; the counts and revision of the same snapshot:
    this transaction exports its snapshot and pg_dump reads that one."""
    command, env = tool("pg_dump", bin_dir), libpq_target(engine.url)[1]
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        with connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
            counts = row_counts(connection)
            revision = revision_of(connection, counts)
            run([command, "--format=custom", f"--file={target}", f"--snapshot={snapshot}",
                 f"--dbname={libpq_target(engine.url)[0]}"], env)
    return counts, revision


def restore_postgresql(engine: Engine, dump: Path, tables: set[str], bin_dir: str | None) -> None:
    """The dump into the database in one transaction (a failure leaves the database as it was). Tables the backup
    does not have (a newer schema's) are dropped first, so the database ends up as the backup was."""
    command = tool("pg_restore", bin_dir)
    with engine.begin() as connection:
        for name in set(inspect(connection).get_table_names()) - tables:
            connection.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()
    target, env = libpq_target(engine.url)
    env["PGOPTIONS"] = f"-c lock_timeout={LOCK_TIMEOUT}"
    # --no-owner and --no-acl: the roles of the old server need not exist on the new one.
    run([command, "--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction", "--exit-on-error",
         f"--dbname={target}", str(dump)], env)


# SQLite -------------------------------------------------------------------------------------------------------

def sqlite_counts(path: Path) -> tuple[dict[str, int], str | None]:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            counts = row_counts(connection)
            return counts, revision_of(connection, counts)
    finally:
        engine.dispose()


def dump_sqlite(database: Path, target: Path) -> tuple[dict[str, int], str | None]:
    """A copy of the database through SQLite's backup API, which reads one consistent state of the file even while
    the portal writes to it (a plain file copy could catch a write half done)."""
    if not database.is_file():
        raise BackupError(f"the SQLite database {database} does not exist")
    with closing(sqlite3.connect(database, timeout=30)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return sqlite_counts(target)


def restore_sqlite(copy: Path, database: Path) -> None:
    """The backup's copy into the database file through the backup API: it replaces every page in one
    transaction, under SQLite's own locks, so a portal process never reads a file half replaced."""
    with closing(sqlite3.connect(copy)) as source:
        try:
            checked = source.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise BackupError(f"the backup's SQLite database is damaged: {error}") from None
        if checked != "ok":
            raise BackupError(f"the backup's SQLite database is damaged: {checked}")
        database.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(database, timeout=30)) as target:
            source.backup(target)
