"""(c) Export memory: peak RSS of `customer-tracking export-data` over 1,000,000 engagement rows.

Seeds 10,000 customers x 100 days, then runs the real command in its own process with
DATABASE_URL pointing at the benchmark database. The baseline is a process that only imports the
app and creates it. Goal: the export's peak RSS at most 100 MB, whatever the number of rows.
"""
from __future__ import annotations

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
