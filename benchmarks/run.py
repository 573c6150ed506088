"""Run the portal's benchmarks, each against a baseline measured in the same run.

(a) health recalculation   at most 2x one raw GROUP BY             (10,000 customers, 900,000 rows)
(b) engagement.csv import  at most 2x csv + sqlite3 executemany    (100,000 rows)
(c) export-data memory     peak RSS at most 100 MB                 (1,000,000 rows)
(d) /customers page        median at most 3x a bare Flask table    (10,000 customers, over HTTP)
(e) /analytics page        median at most 2x the same raw SQL      (10,000 customers, 365 days of rows each;
                           only with --only analytics: seeding takes minutes)
(f) GitHub webhook         throughput at least 0.5x HMAC + insert + upsert in psycopg  (gunicorn, PostgreSQL;
                           only with --only webhooks and a PostgreSQL --database-url)
(g) email delivery         at least 0.5x a bare smtplib loop        (1,000 emails to a local aiosmtpd)
(h) churn model training   under 30 seconds                        (10,000 customers, 365 days of snapshots;
                           only with --only churn: seeding takes minutes)
(i) hostile imports        peak RSS under 150 MB                   (a 2 GB zip bomb, 700,000 bad lines, to POST
                           /import; only with --only hostile: building the bomb takes a while)
(j) scheduled jobs         time per customer at 100,000 customers at most 1.2x at 10,000 (90 days of engagement
                           and snapshots; only with --only jobs and a PostgreSQL --database-url: seeding takes minutes)

    .venv/bin/python benchmarks/run.py [--quick] [--only health,import,export,pages,emails,analytics,webhooks,churn,
                                              hostile,jobs]
                                       [--profile]
                                       [--database-url URL] [--repeat N]

The database (by default a fresh SQLite file in a temporary directory) is emptied and rebuilt
with the app's migrations: never point --database-url at data you want to keep.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import bench_analytics
import bench_emails
import bench_churn
import bench_export
import bench_health
import bench_hostile
import bench_import
import bench_jobs
import bench_pages
import bench_webhooks

# Customers per benchmark: (full, --quick).
SIZES = {"health": (10_000, 1_000), "import": (1_000, 100), "export": (10_000, 1_000), "pages": (10_000, 1_000),
         "analytics": (10_000, 1_000), "webhooks": (100, 100), "emails": (1_000, 100),
         "churn": (10_000, 1_000), "hostile": (10, 10), "jobs": (100_000, 10_000)}
# By name only: analytics, churn and jobs (slow to seed), webhooks and jobs (PostgreSQL), hostile (builds a 2 GB bomb).
DEFAULT = "health,import,export,pages,emails"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows, for a smoke test")
    parser.add_argument("--database-url", help="SQLAlchemy URL of a scratch database (default: SQLite in a temp dir)")
    parser.add_argument("--only", default=DEFAULT, help=f"comma-separated subset of {', '.join(SIZES)} to run")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile top 15 of one import and of one /customers request, and the SQL of one webhook delivery")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure; the best is reported")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure shows as soon as it is measured, even through a pipe
    logging.basicConfig(level=logging.WARNING)  # keeps Alembic's per-migration INFO lines out of the figures
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - SIZES.keys()
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; expected {', '.join(SIZES)}")
    size = {name: sizes[args.quick] for name, sizes in SIZES.items()}
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as scratch:
        workdir = Path(scratch)
        url = args.database_url or f"sqlite:///{workdir / 'benchmark.db'}"
        print(f"database: {url}{' (quick sizes)' if args.quick else ''}")
        runs = {
            "health": lambda: bench_health.run(url, size["health"], args.repeat),
            "import": lambda: bench_import.run(url, workdir, size["import"], args.repeat, args.profile),
            "export": lambda: bench_export.run(url, workdir, size["export"]),
            "pages": lambda: bench_pages.run(url, size["pages"], args.quick, args.profile),
            "analytics": lambda: bench_analytics.run(url, size["analytics"], args.quick),
            "webhooks": lambda: bench_webhooks.run(url, size["webhooks"], args.quick, args.profile, args.repeat),
            "emails": lambda: bench_emails.run(url, size["emails"], args.repeat),
            "churn": lambda: bench_churn.run(url, size["churn"], args.repeat),
            "hostile": lambda: bench_hostile.run(url, workdir, args.quick),
            "jobs": lambda: bench_jobs.run(url, size["jobs"], args.repeat),
        }
        failed = [name for name in chosen if not succeeds(runs[name])]
    if failed:
        raise SystemExit(f"\nfailed: {', '.join(failed)}")


def succeeds(benchmark) -> bool:
    """A failure in the portal is a finding too: report it in one line and go on with the others."""
    try:
        benchmark()
    except Exception as error:  # noqa: BLE001 - any exception of the code under test
        first_line = str(error).splitlines()[0] if str(error) else ""
        print(f"  FAILED: {type(error).__name__}: {first_line[:300]}")
        return False
    return True


if __name__ == "__main__":
    main()
