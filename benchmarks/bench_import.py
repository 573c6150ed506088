"""(b) Import: `portal.transfer.imports.import_path()` plus commit of a 100,000-row engagement.csv.

The file holds 1,000 existing customers x 100 days. Each timed run starts from a database holding
only the customers. The floor reads the same file with the csv module and inserts its rows with
raw sqlite3 executemany (no checks) into a fresh SQLite database built by the same migrations, so
the table, its indexes and constraints are the same. Goal: the import at most 2x the floor.
"""
from __future__ import annotations

import cProfile
import csv
import pstats
import random
import sqlite3
from pathlib import Path

from sqlalchemy import func, select

from portal.extensions import db, sqlite_pragmas
from portal.models import PUBLIC_ID_OFFSET, Engagement
from portal.transfer import imports
from portal.transfer.csvformat import HEADERS

import common

DAYS = 100
GOAL = 2.0
INSERT = f"INSERT INTO engagement ({', '.join(common.COLUMNS)}) VALUES ({', '.join('?' * len(common.COLUMNS))})"


def write_csv(path: Path, customers: int) -> int:
    rows = 0
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(HEADERS["engagement.csv"])
        for chunk in common.engagement_rows(customers, DAYS, common.utc_today(), random.Random(common.SEED)):
            writer.writerows(
                (f"e{key + PUBLIC_ID_OFFSET}", f"c{customer + PUBLIC_ID_OFFSET}", day, *counts)
                for key, customer, day, *counts in chunk
            )
            rows += len(chunk)
    return rows


def customers_only(url: str, customers: int) -> None:
    common.fresh_database(url)
    common.seed(url, customers)


def floor_load(database: Path, csv_path: Path) -> None:
    """The least an import can do: parse the cells it must convert, insert, commit."""
    connection = sqlite3.connect(database)
    sqlite_pragmas(connection, None)  # the app's own connection settings: foreign keys on, WAL
    with csv_path.open(newline="") as stream:
        reader = csv.reader(stream)
        next(reader)
        connection.executemany(INSERT, (
            (int(row_id[1:]) - PUBLIC_ID_OFFSET, int(customer[1:]) - PUBLIC_ID_OFFSET, day, *map(int, counts))
            for row_id, customer, day, *counts in reader
        ))
    connection.commit()
    connection.close()


def import_and_commit(csv_path: Path) -> None:
    imports.import_path(csv_path, actor="benchmark")
    db.session.commit()


def print_profile(action) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(action)
    print("\n  cProfile of one import, top 15 by cumulative time:")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


def run(url: str, workdir: Path, customers: int, repeat: int, profile: bool) -> None:
    csv_path, floor_db = workdir / "engagement.csv", workdir / "import-floor.db"
    rows = write_csv(csv_path, customers)
    print(f"\n(b) import: engagement.csv of {rows:,} rows ({customers:,} customers x {DAYS} days)")
    floor = common.best_of(repeat, lambda: floor_load(floor_db, csv_path),
                           setup=lambda: customers_only(f"sqlite:///{floor_db}", customers))
    app = common.make_app(url)
    with app.app_context():
        def reset() -> None:
            db.session.remove()
            db.engine.dispose()  # the database is rebuilt under the pool's connections
            customers_only(url, customers)

        measured = common.best_of(repeat, lambda: import_and_commit(csv_path), setup=reset)
        if db.session.scalar(select(func.count()).select_from(Engagement)) != rows:
            raise RuntimeError("import benchmark: the import did not write every row")
        common.report("import_path() + commit", measured, "floor: csv + sqlite3 executemany", floor, GOAL)
        if profile:
            reset()
            print_profile(lambda: import_and_commit(csv_path))
        db.session.remove()
        db.engine.dispose()
