"""(c) Export memory: peak RSS of `customer-tracking export-data` over 1,000,000 engagement rows.

Seeds 10,000 customers x 100 days, then runs the real command in its own process with
DATABASE_URL pointing at the benchmark database. The baseline is a process that only imports the
app and creates it. Goal: the export's peak RSS at most 100 MB, whatever the number of rows.

Growth, on its own (seeding 9,000,000 rows takes minutes):

    .venv/bin/python benchmarks/bench_export.py --growth [--database-url URL] [--sizes 10000,100000]

seeds each number of customers with 90 days of engagement each and runs the same command: time per
line written (the four files) and peak RSS for each size. Goals: peak RSS at most 150 MB, time per
line at the largest size at most 1.2x the smallest's.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import common

DAYS = 100
GOAL_MB = 100
GROWTH_DAYS = 90
GROWTH_GOAL = 1.2
GROWTH_GOAL_MB = 150
HERE = Path(__file__).resolve().parent
MIB = 1024  # ru_maxrss is in KiB on Linux


def peak_rss(command: list[str], env: dict[str, str]) -> dict:
    """{"peak_kib", "seconds", "exit_code"} of the command, measured by the small peak_rss.py parent."""
    output = subprocess.run([sys.executable, str(HERE / "peak_rss.py"), *command],
                            env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    result = json.loads(output.splitlines()[-1])
    if result["exit_code"] != 0:
        raise RuntimeError(f"export benchmark: {command[0]} exited with {result['exit_code']}")
    return result


def engagement_lines(archive_path: Path) -> int:
    with zipfile.ZipFile(archive_path) as archive, archive.open("engagement.csv") as member:
        return sum(1 for _ in io.TextIOWrapper(member, encoding="utf-8"))


def run(url: str, workdir: Path, customers: int) -> None:
    rows = customers * DAYS
    print(f"\n(c) export memory: {customers:,} customers, {rows:,} engagement rows")
    common.fresh_database(url)
    common.seed(url, customers, DAYS)
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "benchmark", "SCHEDULER_ENABLED": "false"}
    archive = workdir / "export.zip"
    export = peak_rss([str(Path(sys.executable).parent / "customer-tracking"), "export-data", "--output", str(archive)], env)
    baseline = peak_rss([sys.executable, "-c", "from portal import create_app; create_app()"], env)
    if engagement_lines(archive) != rows + 1:
        raise RuntimeError("export benchmark: engagement.csv does not hold every row")
    export_mb, baseline_mb = export["peak_kib"] / MIB, baseline["peak_kib"] / MIB
    verdict = "within goal" if export_mb <= GOAL_MB else "OVER GOAL"
    print(f"  {'export-data peak RSS':<44} {export_mb:8.1f} MB (goal at most {GOAL_MB} MB): {verdict}")
    print(f"  {'baseline: create_app() peak RSS':<44} {baseline_mb:8.1f} MB")
    print(f"  {'difference':<44} {export_mb - baseline_mb:8.1f} MB")
    print(f"  {'export-data wall time':<44} {export['seconds']:8.1f} s ({archive.stat().st_size / 2**20:.1f} MB zip)")


def lines_of(archive_path: Path) -> int:
    with zipfile.ZipFile(archive_path) as archive:
        total = 0
        for name in archive.namelist():
            with archive.open(name) as member:
                total += sum(1 for _ in io.TextIOWrapper(member, encoding="utf-8"))
        return total


def growth(url: str, workdir: Path, sizes: list[int]) -> None:
    print(f"\n(c) export growth: {GROWTH_DAYS} days of engagement per customer")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "benchmark", "SCHEDULER_ENABLED": "false"}
    figures = []
    for customers in sizes:
        common.fresh_database(url)
        common.seed(url, customers, GROWTH_DAYS)
        archive = workdir / "export.zip"
        export = peak_rss([str(Path(sys.executable).parent / "customer-tracking"), "export-data", "--output",
                           str(archive)], env)
        lines = lines_of(archive)
        if lines < customers * GROWTH_DAYS:
            raise RuntimeError("export growth: engagement.csv does not hold every row")
        archive.unlink()
        figures.append((customers, lines, export["seconds"], export["peak_kib"] / MIB))
        print(f"  {customers:>7,} customers, {lines:>9,} lines: {export['seconds']:7.1f} s, "
              f"{export['seconds'] / lines * 1e6:5.2f} us/line, peak RSS {export['peak_kib'] / MIB:6.1f} MB")
    (first_customers, first_lines, first_seconds, _), (last_customers, last_lines, last_seconds, _) = figures[0], figures[-1]
    ratio = (last_seconds / last_lines) / (first_seconds / first_lines)
    print(f"  time per line: {ratio:.2f}x at {last_customers:,} customers vs {first_customers:,} "
          f"(goal at most {GROWTH_GOAL:g}x): {'within goal' if ratio <= GROWTH_GOAL else 'OVER GOAL'}")
    worst = max(figure[3] for figure in figures)
    print(f"  peak RSS: at most {worst:.1f} MB (goal at most {GROWTH_GOAL_MB} MB): "
          f"{'within goal' if worst <= GROWTH_GOAL_MB else 'OVER GOAL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--growth", action="store_true", help="time per line and peak RSS at 10,000 and 100,000 customers")
    parser.add_argument("--sizes", default="10000,100000", help="customers per growth run, comma-separated")
    parser.add_argument("--database-url", help="SQLAlchemy URL of a scratch database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    if not args.growth:
        parser.error("run the export benchmark with benchmarks/run.py --only export; this file alone runs --growth")
    common.run_growth(growth, args.database_url, args.sizes)


if __name__ == "__main__":
    main()
