"""(b) Import: `portal.transfer.imports.import_path()` plus commit of a 100,000-row engagement.csv.

The file holds 1,000 existing customers x 100 days. Each timed run starts from a database holding
only the customers. The floor reads the same file with the csv module and writes the same rows, with
no checks, into the same schema (built by the same migrations, so the table, its indexes and
constraints are the same): on SQLite with raw sqlite3 executemany into a fresh SQLite database, on
PostgreSQL (a PostgreSQL --database-url) with psycopg COPY into the benchmark database itself, rebuilt
with the same customers. Goal: the import at most 2x the floor.

Growth, on its own (it takes minutes):

    .venv/bin/python benchmarks/bench_import.py --growth [--database-url URL] [--sizes 10000,100000]

builds an export-shaped zip (customers.csv, onboarding.csv, engagement.csv) for each number of
customers with 90 days of engagement each (9,000,000 engagement lines for 100,000), streamed to disk,
and imports it into an empty database with `import_path()` + commit in a process of its own under
peak_rss.py (limits raised to fit). It prints time per line and peak RSS for each size, also up to
the health recalculation the import ends with. Goals: peak RSS at most 150 MB, time per line at the
largest size at most 1.2x the smallest's.
"""
from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import logging
import os
import pstats
import random
import resource
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from portal.extensions import db, sqlite_pragmas
from portal.models import PUBLIC_ID_OFFSET, Engagement
from portal.transfer import imports
from portal.transfer.csvformat import HEADERS, cell
from portal.transfer.limits import Limits

import common

DAYS = 100
GOAL = 2.0
GROWTH_DAYS = 90
GROWTH_GOAL = 1.2
RSS_GOAL_MB = 150
HERE = Path(__file__).resolve().parent
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


def parsed_rows(stream) -> object:
    """The file's rows as the table takes them: ids as numbers, counts as integers, dates as they are."""
    reader = csv.reader(stream)
    next(reader)
    return ((int(row_id[1:]) - PUBLIC_ID_OFFSET, int(customer[1:]) - PUBLIC_ID_OFFSET, day, *map(int, counts))
            for row_id, customer, day, *counts in reader)


def floor_load(database: Path, csv_path: Path) -> None:
    """The least an import can do on SQLite: parse the cells it must convert, insert, commit."""
    connection = sqlite3.connect(database)
    sqlite_pragmas(connection, None)  # the app's own connection settings: foreign keys on, WAL
    with csv_path.open(newline="") as stream:
        connection.executemany(INSERT, parsed_rows(stream))
    connection.commit()
    connection.close()


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def floor_copy(url: str, csv_path: Path) -> None:
    """The least an import can do on PostgreSQL: parse the cells it must convert, COPY, commit."""
    with psycopg.connect(libpq_url(url)) as connection, csv_path.open(newline="") as stream:
        with connection.cursor() as cursor, cursor.copy(f"COPY engagement ({', '.join(common.COLUMNS)}) FROM STDIN") as copy:
            for row in parsed_rows(stream):
                copy.write_row(row)


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
    if common.sqlite_path(url) is None:
        floor_name = "floor: csv + psycopg COPY"
        floor = common.best_of(repeat, lambda: floor_copy(url, csv_path), setup=lambda: customers_only(url, customers))
    else:
        floor_name = "floor: csv + sqlite3 executemany"
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
        common.report("import_path() + commit", measured, floor_name, floor, GOAL)
        if profile:
            reset()
            print_profile(lambda: import_and_commit(csv_path))
        db.session.remove()
        db.engine.dispose()


# Growth ------------------------------------------------------------------------------------------


def write_export(path: Path, customers: int, days: int) -> int:
    """An export-shaped zip of the three importable files, streamed: no file is ever whole in memory. Its lines."""
    rng = random.Random(common.SEED)
    people, steps = common.customer_rows(customers, rng)
    lines = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, rows in (("customers.csv", customer_cells(people)),
                           ("onboarding.csv", onboarding_cells(steps)),
                           ("engagement.csv", engagement_cells(customers, days, rng))):
            with archive.open(name, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(HEADERS[name])
                for row in rows:
                    writer.writerow(row)
                    lines += 1
    del people, steps
    return lines


def customer_cells(people: list[dict]):
    for row in people:
        yield [f"c{row['id'] + PUBLIC_ID_OFFSET}", *(cell(row[column]) for column in HEADERS["customers.csv"][1:])]


def onboarding_cells(steps: list[dict]):
    for row in steps:
        yield [f"o{row['id'] + PUBLIC_ID_OFFSET}", f"c{row['customer_id'] + PUBLIC_ID_OFFSET}",
               *(cell(row[step]) for step in HEADERS["onboarding.csv"][2:7]), "", "", row["blocker_type"], row["notes"]]


def engagement_cells(customers: int, days: int, rng: random.Random):
    for chunk in common.engagement_rows(customers, days, common.utc_today(), rng):
        for key, customer, day, *counts in chunk:
            yield (f"e{key + PUBLIC_ID_OFFSET}", f"c{customer + PUBLIC_ID_OFFSET}", day, *counts)


def child(url: str, archive: Path, result_path: Path) -> None:
    """In its own process: import the zip and commit; note the time and peak RSS before the health recalculation."""
    from portal.health import snapshots

    marks: dict[str, float] = {}
    recalculate = snapshots.recalculate

    def timed(*args, **kwargs):
        marks["import_seconds"] = time.perf_counter() - start
        marks["import_peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        began = time.perf_counter()
        try:
            return recalculate(*args, **kwargs)
        finally:
            marks["recalculate_seconds"] = time.perf_counter() - began

    snapshots.recalculate = timed
    app = common.make_app(url)
    with app.app_context():
        start = time.perf_counter()
        imports.import_path(archive, actor="benchmark", limits=Limits(file_bytes=2**40, lines=10**9))
        db.session.commit()
        marks["seconds"] = time.perf_counter() - start
        marks["engagement_rows"] = db.session.scalar(select(func.count()).select_from(Engagement))
    result_path.write_text(json.dumps(marks))


def growth(url: str, workdir: Path, sizes: list[int]) -> None:
    print(f"\n(b) import growth: export-shaped zips, {GROWTH_DAYS} days of engagement per customer, into an empty database")
    figures = []
    for customers in sizes:
        archive = workdir / f"export-{customers}.zip"
        lines = write_export(archive, customers, GROWTH_DAYS)
        common.fresh_database(url)
        marks_path = workdir / "marks.json"
        env = {**os.environ, "SECRET_KEY": "benchmark", "SCHEDULER_ENABLED": "false"}
        command = [sys.executable, str(HERE / "peak_rss.py"), sys.executable, str(Path(__file__).resolve()),
                   "--child", url, str(archive), str(marks_path)]
        measured = json.loads(subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
                              .stdout.splitlines()[-1])
        if measured["exit_code"] != 0:
            raise RuntimeError(f"import growth: the import of {customers:,} customers exited {measured['exit_code']}")
        marks = json.loads(marks_path.read_text())
        if marks["engagement_rows"] != customers * GROWTH_DAYS:
            raise RuntimeError("import growth: the import did not write every engagement row")
        archive.unlink()
        figure = {"customers": customers, "lines": lines, **marks, "peak_mb": measured["peak_kib"] / 1024,
                  "import_peak_mb": marks["import_peak_kib"] / 1024}
        figures.append(figure)
        print(f"  {customers:>7,} customers, {lines:>9,} lines: {marks['seconds']:7.1f} s, "
              f"{marks['seconds'] / lines * 1e6:5.2f} us/line, peak RSS {figure['peak_mb']:6.1f} MB; "
              f"up to the recalculation {marks['import_seconds']:7.1f} s, "
              f"{marks['import_seconds'] / lines * 1e6:5.2f} us/line, peak RSS {figure['import_peak_mb']:6.1f} MB "
              f"(recalculation {marks['recalculate_seconds']:.1f} s)")
    first, last = figures[0], figures[-1]
    for label, key in (("whole import", "seconds"), ("up to the recalculation", "import_seconds")):
        ratio = (last[key] / last["lines"]) / (first[key] / first["lines"])
        verdict = "within goal" if ratio <= GROWTH_GOAL else "OVER GOAL"
        print(f"  time per line, {label}: {ratio:.2f}x at {last['customers']:,} customers vs {first['customers']:,} "
              f"(goal at most {GROWTH_GOAL:g}x): {verdict}")
    for label, key in (("whole import", "peak_mb"), ("up to the recalculation", "import_peak_mb")):
        worst = max(figure[key] for figure in figures)
        verdict = "within goal" if worst <= RSS_GOAL_MB else "OVER GOAL"
        print(f"  peak RSS, {label}: at most {worst:.1f} MB (goal at most {RSS_GOAL_MB} MB): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--growth", action="store_true", help="time per line and peak RSS at 10,000 and 100,000 customers")
    parser.add_argument("--sizes", default="10000,100000", help="customers per growth run, comma-separated")
    parser.add_argument("--database-url", help="SQLAlchemy URL of a scratch database (default: SQLite in a temp dir)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "ZIP", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        logging.basicConfig(level=logging.WARNING)
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    if not args.growth:
        parser.error("run the import benchmark with benchmarks/run.py --only import; this file alone runs --growth")
    common.run_growth(growth, args.database_url, args.sizes)


if __name__ == "__main__":
    main()
