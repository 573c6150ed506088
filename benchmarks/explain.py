"""EXPLAIN ANALYZE of every statement a page runs, slowest first: what to read when a page is slow.

    .venv/bin/python benchmarks/explain.py postgresql+psycopg://postgres@127.0.0.1:5432/growth_bench_100000 \\
        "/customers?cohort=Beta&status=active&sort=score&dir=desc&page=3" [--top 3] [--all]

The page is asked twice as the benchmarks' admin (bench-admin@example.com, made by growth.py and bench_pages.py),
through the app's test client on the given database; the statements of the second request are recorded with
their parameters and each SELECT is explained with ANALYZE and BUFFERS in a transaction that is rolled back.
Only the `--top` slowest are printed (all with --all). Nothing here changes the database's statistics.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_pages import EMAIL, PASSWORD  # noqa: E402
from portal.extensions import db  # noqa: E402

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def recorded_statements(app, path: str) -> list[tuple[str, object, float, bool]]:
    """(SQL, parameters, seconds, through a server-side cursor) of each statement the second request for `path`
    ran."""
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    signed = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": CSRF.search(form)[1]})
    if signed.status_code != 302:
        raise SystemExit(f"explain: could not sign in as {EMAIL} (HTTP {signed.status_code})")
    client.get(path)
    found: list[tuple[str, object, float, bool]] = []
    with app.app_context():
        engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["started"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        found.append((statement, parameters, time.perf_counter() - conn.info.pop("started"),
                      bool(context.execution_options.get("stream_results"))))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        response = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    print(f"GET {path}: HTTP {response.status_code}, {len(found)} statements, "
          f"{sum(item[2] for item in found) * 1000:.1f} ms in the database")
    return found


def explain(app, statements: list[tuple[str, object, float, bool]], top: int | None) -> None:
    """A statement read through a server-side cursor is explained as that cursor: PostgreSQL plans a cursor for
    its first rows, not as it plans the bare SELECT."""
    chosen = sorted((item for item in statements if item[0].lstrip().upper().startswith(("SELECT", "WITH"))),
                    key=lambda item: -item[2])
    with app.app_context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            for statement, parameters, seconds, streamed in chosen[:top]:
                print(f"\n--- {seconds * 1000:.1f} ms{' (server-side cursor)' if streamed else ''}\n{statement}\n"
                      f"{parameters}")
                declared = f"DECLARE explained CURSOR FOR {statement}" if streamed else statement
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {declared}", parameters)
                print("\n".join(row[0] for row in cursor.fetchall()))
            connection.rollback()
        finally:
            connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args()
    app = common.make_app(args.database_url)
    explain(app, recorded_statements(app, args.path), None if args.all else args.top)


if __name__ == "__main__":
    main()
