"""Growth: what 100 times more customers costs, each figure at the largest size over a smaller one.

    .venv/bin/python benchmarks/growth.py                       # 1,000, 10,000 and 100,000 customers
    .venv/bin/python benchmarks/growth.py --quick               # 300, 1,000 and 3,000: a smoke run
    .venv/bin/python benchmarks/growth.py --only pages,jobs --keep      then --reuse to skip the build
    .venv/bin/python benchmarks/growth.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/growth_bench

PostgreSQL only, not in CI. One database per size, <name>_<size> on the server of --database-url (plus
<name>_import for the imports), each built by the app's migrations, loaded by benchmarks/growth_build.py with
COPY, then brought to the state the product leaves by the product's own daily jobs; nothing here runs VACUUM
or ANALYZE (autovacuum acts as the server is configured). One database per size so that the pages of every
size are served side by side and timed interleaved in one run. The databases are dropped at the end unless
--keep; --reuse keeps one built today by this script. Figures, each with its goal:

  pages        p50 of each page at the largest size over the smallest (at most 1.5x); /analytics (90 days)
               also over the middle size (at most 2x)
  jobs         each daily job's time per customer, largest over middle size (at most 1.2x)
  incremental  recalculate(1% of customers changed today) + commit over a full recalculate() + commit (5%)
  transfer     export-data and import-data (into an empty portal) at the middle and largest sizes: peak RSS
               (at most 150 MB) and time per row, largest over middle (at most 1.2x)
  concurrency  /customers with 16 clients on gunicorn (the repo's gunicorn.conf.py), against a bare Flask route
  webhooks     signed GitHub deliveries while a full recalculation runs in another process, against alone:
               throughput at least 0.8x, p99 at most 2x
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import psycopg
from flask_migrate import downgrade, upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal.commands import create_user
from portal.extensions import db
from portal.health import snapshots
from portal.jobs import runs, tasks
from portal.models import HealthSettings, JobRun, Playbook, utcnow

import bench_pages
import bench_webhooks
import common
import growth_build

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZES, QUICK_SIZES = (1_000, 10_000, 100_000), (1_000, 2_000, 4_000)
FIGURES = ("pages", "jobs", "incremental", "concurrency", "webhooks", "transfer")
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/growth_bench"
BUILD_VERSION = 2  # a database built by another version of the builder is rebuilt, never reused
TEAM = [("bench-admin@example.com", "Benchmark Admin", "admin")] + [
    (f"member{number}@example.com", f"Member {number}", "member") for number in range(1, 5)]
SKIPPED_JOBS = {"deliver_emails": "sends over SMTP or ConvertKit: needs a mail peer (benchmarks/bench_emails.py)",
                "backup": "pg_dump into BACKUP_DIR: measures pg_dump and the disk"}
GOALS = {"pages": 1.5, "analytics": 2.0, "jobs": 1.2, "incremental": 0.05, "rss_mb": 150, "per_row": 1.2,
         "webhook_rps": 0.8, "webhook_p99": 2.0}
# Caps, so that one query the planner gets badly wrong cannot hold the run for hours: a job's statements are
# cancelled after JOB_CAP seconds (the job is reported "over" the cap), a page that takes longer than PAGE_CAP is
# asked no more at that size, an import or export is killed after TRANSFER_CAP seconds. (full, --quick)
JOB_CAP, PAGE_CAP, TRANSFER_CAP = (120, 30), (15, 5), (300, 60)
CUSTOMER_KEY = 500  # the same simulated customer (c1500) in every size
SECRET = bench_webhooks.SECRET


def verdict(ok: bool) -> str:
    return "within goal" if ok else "OVER GOAL"


# --- databases ---------------------------------------------------------------------------------------------------

def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(base: str, suffix: str) -> str:
    parsed = make_url(base)
    return parsed.set(database=f"{parsed.database}_{suffix}").render_as_string(hide_password=False)


def server(url: str) -> psycopg.Connection:
    return psycopg.connect(libpq(make_url(url).set(database="postgres").render_as_string(hide_password=False)),
                           autocommit=True)


def recreate(url: str) -> None:
    name = make_url(url).database
    with server(url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop(url: str) -> None:
    with server(url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def marker(url: str) -> dict | None:
    """What the build recorded on the database (its comment), or None for none."""
    with server(url) as connection:
        row = connection.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                                 (make_url(url).database,)).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def record(url: str, facts: dict) -> None:
    with server(url) as connection:
        comment = json.dumps(facts).replace("'", "''")
        connection.execute(f"""COMMENT ON DATABASE "{make_url(url).database}" IS '{comment}'""")


def prepare(url: str, size: int, today: dt.date, reuse: bool, cap: int) -> dict:
    """The database of `size` customers in the state the daily jobs leave; the build's facts (rows, times)."""
    if reuse:
        facts = marker(url) if database_exists(url) else None
        if facts and facts.get("version") == BUILD_VERSION and facts.get("day") == today.isoformat() \
                and facts.get("size") == size:
            print(f"  {size:,} customers: reusing {make_url(url).database}, built today")
            return facts
    return build(url, size, today, cap)


def database_exists(url: str) -> bool:
    with server(url) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (make_url(url).database,)).fetchone() is not None


def build(url: str, size: int, today: dt.date, cap: int) -> dict:
    started = time.perf_counter()
    print(f"  {size:,} customers: building {make_url(url).database}")
    recreate(url)
    common.fresh_database(url)
    app = common.make_app(url)
    with app.app_context():
        owners = [create_user(email, name, role, bench_pages.PASSWORD).id for email, name, role in TEAM]
        snapshots.current_settings()
        from portal.playbooks.demo import PLAYBOOKS
        db.session.add_all(Playbook(name=name, description=description, condition=condition, steps=steps,
                                    created_by="benchmark") for name, description, condition, steps in PLAYBOOKS)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    rows = growth_build.load(libpq(url), size, today, owners, utcnow())
    loaded = time.perf_counter() - started
    print(f"    COPY: {', '.join(f'{table} {count:,}' for table, count in rows.items())} in {loaded:.0f} s")
    recount_kept_tables(app)
    rebuilt = rebuild_rollups(app)
    jobs = run_daily_jobs(url, cap)
    facts = {"version": BUILD_VERSION, "day": today.isoformat(), "size": size, "rows": rows, "copy_seconds": loaded,
             "rollups_seconds": rebuilt, "jobs": jobs, "build_seconds": time.perf_counter() - started}
    print(f"    built in {facts['build_seconds']:.0f} s")
    record(url, facts)
    return facts


# The revision before the first table kept by triggers from the rows written (0020 feedback_days; then
# retention_days, funnel_days, engagement_totals, email_counts).
BEFORE_KEPT = "0019_onboarding_in_rollups"


def recount_kept_tables(app) -> None:
    """The load's replica mode runs no trigger, so the tables kept by triggers are empty: going back to the revision
    before the first of them and up again counts them from the loaded rows, as upgrading a portal holding that data
    does."""
    with app.app_context():
        started = time.perf_counter()
        downgrade(revision=BEFORE_KEPT)
        upgrade()
        print(f"    tables kept by triggers counted by their migrations: {time.perf_counter() - started:.1f} s")


def rebuild_rollups(app) -> float | None:
    """The current-state rows and daily rollups for the past days, where the portal keeps them."""
    try:
        module = importlib.import_module("portal.health.rollups")
    except ImportError:
        return None
    if not hasattr(module, "rebuild_all"):
        return None
    with app.app_context():
        started = time.perf_counter()
        module.rebuild_all()
        db.session.commit()
        seconds = time.perf_counter() - started
        db.session.remove()
    print(f"    rollups.rebuild_all() + commit: {seconds:.1f} s")
    return seconds


def run_daily_jobs(url: str, cap: int) -> dict:
    """Every standard job once, as "Run now" runs it (lock, run record, commit): {name: seconds or error}; each
    statement cancelled after `cap` seconds."""
    results = {}
    app = common.create_app({"SQLALCHEMY_DATABASE_URI": url, "SCHEDULER_ENABLED": False, "SECRET_KEY": "benchmark",
                             "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-c statement_timeout={cap * 1000}"}}})
    with app.app_context():
        for job in tasks.STANDARD_JOBS:
            if job.name in SKIPPED_JOBS:
                continue
            started = time.perf_counter()
            outcome = runs.run(job, "manual")
            seconds = time.perf_counter() - started
            run = db.session.query(JobRun).filter_by(job=job.name).order_by(JobRun.id.desc()).first()
            if outcome == "succeeded":
                results[job.name] = {"seconds": seconds, "counts": run.counts}
            else:
                error = (run.error if run else str(outcome)).splitlines()[0][:300]
                results[job.name] = {"error": error, "seconds": seconds, "capped": "statement timeout" in error}
            db.session.remove()
            shown = f"{seconds:7.2f} s {run.counts}" if outcome == "succeeded" else f"FAILED {results[job.name]['error']}"
            print(f"    job {job.name:<18} {shown}")
        db.engine.dispose()
    return results


# --- pages ---------------------------------------------------------------------------------------------------------

def pages(today: dt.date) -> list[tuple[str, str, object]]:
    """(name, path, check) of each page timed; check(html) says why the answer is not the page, or None."""
    def rows(count):
        return lambda html: None if html.partition("<tbody")[2].partition("</tbody>")[0].count("<tr") == count \
            else f"not {count} table rows"

    def holds(*needles, absent=()):
        def check(html):
            missing = [needle for needle in needles if needle not in html]
            present = [needle for needle in absent if needle in html]
            return f"missing {missing}, showing {present}" if missing or present else None
        return check

    start = (today - dt.timedelta(days=growth_build.DAYS - 1)).isoformat()
    return [
        ("/customers", "/customers", rows(50)),
        ("/customers filtered", bench_pages.FILTERED_PAGE, rows(50)),
        ("/ (dashboard)", "/", holds("trends-heading", "band at_risk", absent=("Nobody is at risk today.",))),
        ("/analytics (90 days)", f"/analytics?start={start}&end={today}", holds("chart-retention", "chart-prs")),
        ("customer page", f"/customers/c{CUSTOMER_KEY + 1000}", holds(f"c{CUSTOMER_KEY + 1000}", "engagement-data", "history-data")),
        ("/tasks", "/tasks", holds('class="task', absent=("Nothing to do here.",))),
        ("/events", "/events", holds("events-table", absent=("No event matches.",))),
        ("/emails", "/emails", holds("emails-table", absent=("No email matches.",))),
        ("/feedback", "/feedback", holds("nps_by_month-heading", "chart-nps")),
    ]


def timed_get(client: bench_pages.Client, path: str, check) -> float:
    start = time.perf_counter()
    status, html = client.request("GET", path)
    elapsed = time.perf_counter() - start
    problem = check(html) if status == 200 else f"status {status}"
    if problem:
        raise RuntimeError(f"growth benchmark: {path} is not the page ({problem})")
    return elapsed


def measure_pages(urls: dict[int, str], today: dt.date, quick: bool) -> dict:
    """{page name: {size: p50 ms}}: the median over 3 runs of each run's median of TIMED requests; within a run
    each page is asked of every size in turn, so a slow moment of the machine falls on all sizes alike. A page
    slower than PAGE_CAP at a size is asked no more there: its figure is that one answer's time."""
    timed, cap = (2, PAGE_CAP[1]) if quick else (3, PAGE_CAP[0])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    chosen = pages(today)
    medians = {name: {size: [] for size in urls} for name, _, _ in chosen}
    capped: set[tuple[str, int]] = set()
    with ExitStack() as stack:
        clients = {}
        for size, url in urls.items():
            port = stack.enter_context(bench_pages.serving(common.make_app(url)))
            client = bench_pages.Client(port)
            stack.callback(client.close)
            bench_pages.signed_in(client.request("POST", "/login", login_form(client))[0])
            clients[size] = client
        for run in range(3):
            for name, path, check in chosen:
                for size, client in clients.items():
                    if (name, size) in capped:
                        continue
                    if run == 0:
                        first = timed_get(client, path, check)  # warm-up
                        if first > cap:
                            capped.add((name, size))
                            medians[name][size].append(first)
                            continue
                    medians[name][size].append(statistics.median(timed_get(client, path, check) for _ in range(timed)))
    return {name: {size: (statistics.median(values) * 1000, (name, size) in capped) for size, values in by_size.items()}
            for name, by_size in medians.items()}


def login_form(client: bench_pages.Client) -> dict:
    form = bench_pages.login_form(*client.request("GET", "/login"))
    return {**form, "email": TEAM[0][0]}


def report_pages(p50: dict, sizes: list[int]) -> None:
    small, middle, big = sizes[0], sizes[len(sizes) // 2], sizes[-1]
    print(f"\n  pages: p50 in ms (median of 3 runs; + a single answer slower than {PAGE_CAP[0]} s), "
          f"goal {big:,} over {small:,} at most {GOALS['pages']:g}x")
    print(f"  {'page':<24}" + "".join(f"{size:>12,}" for size in sizes) + f"{'ratio':>9}")
    for name, by_size in p50.items():
        ratio = by_size[big][0] / by_size[small][0]
        print(f"  {name:<24}" + "".join(f"{by_size[size][0]:11.1f}{'+' if by_size[size][1] else ' '}" for size in sizes)
              + f"{ratio:8.1f}x  {verdict(ratio <= GOALS['pages'])}")
    analytics = p50["/analytics (90 days)"]
    ratio = analytics[big][0] / analytics[middle][0]
    print(f"  /analytics {big:,} over {middle:,}: {ratio:.1f}x (goal at most {GOALS['analytics']:g}x): "
          f"{verdict(ratio <= GOALS['analytics'])}")


# --- jobs ------------------------------------------------------------------------------------------------------------

def report_jobs(facts: dict[int, dict], sizes: list[int], capped_seconds: int) -> None:
    middle, big = sizes[len(sizes) // 2], sizes[-1]
    print(f"\n  daily jobs (first run after the load, through the job runner): ms per 1,000 customers, "
          f"goal {big:,} over {middle:,} at most {GOALS['jobs']:g}x")
    print(f"  {'job':<20}" + "".join(f"{size:>12,}" for size in sizes) + f"{'ratio':>9}")
    for job in tasks.STANDARD_JOBS:
        if job.name in SKIPPED_JOBS:
            print(f"  {job.name:<20} skipped: {SKIPPED_JOBS[job.name]}")
            continue
        results = [facts[size]["jobs"].get(job.name, {"error": "not run"}) for size in sizes]
        capped = [size for size, result in zip(sizes, results) if result.get("capped")]
        failed = [result["error"] for result in results if "error" in result and not result.get("capped")]
        if capped and not failed:
            shown = "".join(f"{result['seconds'] / size * 1e6:11.1f}{'+' if result.get('capped') else ' '}"
                            for size, result in zip(sizes, results))
            print(f"  {job.name:<20}{shown}  OVER GOAL: a statement ran over {capped_seconds}s (+) at "
                  f"{', '.join(f'{size:,}' for size in capped)}")
            continue
        if failed:
            print(f"  {job.name:<20} FAILED: {failed[0]}")
            continue
        per = {size: result["seconds"] / size * 1e6 for size, result in zip(sizes, results)}
        ratio = per[big] / per[middle]
        print(f"  {job.name:<20}" + "".join(f"{per[size]:12.1f}" for size in sizes)
              + f"{ratio:8.2f}x  {verdict(ratio <= GOALS['jobs'])}")


# --- incremental recalculation ----------------------------------------------------------------------------------------

CHANGE_TODAY = """INSERT INTO engagement (customer_id, date, issues_tagged, prs_generated, prs_merged, prs_rejected,
    support_requests) SELECT id, :today, 1, 1, 1, 0, 0 FROM customers WHERE id = ANY(:ids)
ON CONFLICT (customer_id, date) DO UPDATE SET issues_tagged = engagement.issues_tagged + 1,
    prs_generated = engagement.prs_generated + 1, prs_merged = engagement.prs_merged + 1"""


def measure_incremental(url: str, size: int, today: dt.date, repeat: int = 3) -> None:
    app = common.make_app(url)
    rng = random.Random(common.SEED)
    with app.app_context():
        def timed(action) -> float:
            started = time.perf_counter()
            action()
            db.session.commit()
            return time.perf_counter() - started

        some = []
        for _ in range(repeat):
            ids = rng.sample(range(1, size + 1), size // 100)
            db.session.execute(text(CHANGE_TODAY), {"today": today, "ids": ids})
            db.session.commit()
            some.append(timed(lambda: snapshots.recalculate(ids, today=today)))
        full = [timed(lambda: snapshots.recalculate(today=today)) for _ in range(repeat)]
        db.session.remove()
        db.engine.dispose()
    incremental, whole = statistics.median(some), statistics.median(full)
    ratio = incremental / whole
    print(f"\n  incremental recalculation at {size:,} customers (median of {repeat})")
    print(f"  {'recalculate(1% changed today) + commit':<44} {incremental:8.3f} s")
    print(f"  {'recalculate() + commit (everyone)':<44} {whole:8.3f} s")
    print(f"  ratio {ratio:.1%} (goal at most {GOALS['incremental']:.0%}): {verdict(ratio <= GOALS['incremental'])}")


# --- import and export -------------------------------------------------------------------------------------------------

def peak_rss(command: list[str], env: dict, cap: int) -> dict:
    output = subprocess.run([sys.executable, str(HERE / "peak_rss.py"), *command], env={**env, "PEAK_RSS_TIMEOUT": str(cap)},
                            stdout=subprocess.PIPE, text=True, check=True).stdout
    result = json.loads(output.splitlines()[-1])
    if result["exit_code"] != 0 and not result["timed_out"]:
        raise RuntimeError(f"growth benchmark: {' '.join(command[:2])} exited with {result['exit_code']}")
    return result


def lines_in(archive: Path) -> int:
    with zipfile.ZipFile(archive) as opened:
        return sum(sum(1 for _ in opened.open(name)) - 1 for name in opened.namelist())


def measure_transfer(base: str, urls: dict[int, str], sizes: list[int], workdir: Path, cap: int) -> None:
    """export-data of each database and import-data of that zip into an empty portal, each in its own process."""
    tool = str(Path(sys.executable).parent / "customer-tracking")
    scratch = database_url(base, "import")
    figures = {}
    for size in sizes[len(sizes) // 2:]:
        env = {**os.environ, "DATABASE_URL": urls[size], "SECRET_KEY": "benchmark", "SCHEDULER_ENABLED": "false"}
        archive = workdir / f"export-{size}.zip"
        export = peak_rss([tool, "export-data", "--output", str(archive)], env, cap)
        if export["timed_out"]:
            raise RuntimeError(f"growth benchmark: export-data of {size:,} customers ran over {cap} s")
        rows = lines_in(archive)
        recreate(scratch)
        common.fresh_database(scratch)
        imported = peak_rss([tool, "import-data", str(archive)], {**env, "DATABASE_URL": scratch}, cap)
        figures[size] = {"rows": rows, "export": export, "import": imported}
        print(f"  {size:,} customers: {rows:,} CSV rows, zip {archive.stat().st_size / 2**20:.1f} MB")
        archive.unlink()
    drop(scratch)
    middle, big = sizes[len(sizes) // 2], sizes[-1]
    print(f"\n  import and export (customer-tracking, each under peak_rss.py; import into an empty portal)")
    for kind in ("export", "import"):
        for size in (middle, big):
            figure = figures[size][kind]
            mb, over = figure["peak_kib"] / 1024, "+" if figure["timed_out"] else " "
            print(f"  {kind}-data {size:>8,}: {figure['seconds']:7.1f} s{over} "
                  f"{figure['seconds'] / figures[size]['rows'] * 1e6:7.1f} us per row{over} peak RSS {mb:6.1f} MB{over}"
                  f"(goal at most {GOALS['rss_mb']} MB): {verdict(mb <= GOALS['rss_mb'])}"
                  + (f"; killed after {cap} s: at least these figures" if figure["timed_out"] else ""))
        per = {size: figures[size][kind]["seconds"] / figures[size]["rows"] for size in (middle, big)}
        ratio = per[big] / per[middle]
        killed = [figures[size][kind]["timed_out"] for size in (middle, big)]
        bound = {(False, True): " (at least: the larger was killed)", (True, False): " (at most: the smaller was killed)",
                 (True, True): " (both killed: no ratio)"}.get(tuple(killed), "")
        print(f"  {kind}-data time per row {big:,} over {middle:,}: {ratio:.2f}x{bound} "
              f"(goal at most {GOALS['per_row']:g}x): {verdict(ratio <= GOALS['per_row'] and not killed[1])}")


# --- concurrency -------------------------------------------------------------------------------------------------------

def load(port: int, send, requests: int, clients: int = bench_webhooks.CLIENTS) -> dict:
    """`clients` threads with a keep-alive connection each share `requests` calls of send(connection, index),
    which answers the latency or raises. {"rps", "p50", "p99", "failed", "first_error"}."""
    import http.client

    tickets: queue.SimpleQueue = queue.SimpleQueue()
    for index in range(requests):
        tickets.put(index)
    latencies, errors = [], []

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                try:
                    index = tickets.get_nowait()
                except queue.Empty:
                    return
                try:
                    latencies.append(send(connection, index))
                except (RuntimeError, OSError, http.client.HTTPException) as error:
                    errors.append(str(error)[:200])
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        finally:
            connection.close()

    with ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        for finished in [pool.submit(client) for _ in range(clients)]:
            finished.result()
        seconds = time.perf_counter() - start
    latencies.sort()
    if not latencies:
        raise RuntimeError(f"growth benchmark: every request failed: {errors[0]}")
    return {"rps": len(latencies) / seconds, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "failed": len(errors), "first_error": errors[0] if errors else ""}


def show(name: str, figure: dict) -> None:
    failed = f"  {figure['failed']} FAILED ({figure['first_error']})" if figure["failed"] else ""
    print(f"  {name:<46} {figure['rps']:8.1f} req/s  p50 {figure['p50']:7.1f} ms  p99 {figure['p99']:7.1f} ms{failed}")


def get_sender(path: str, cookie: str, check):
    def send(connection, _index) -> float:
        start = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        body = response.read().decode()
        elapsed = time.perf_counter() - start
        problem = check(body) if response.status == 200 else f"status {response.status}"
        if problem:
            raise RuntimeError(f"{path}: {problem}")
        return elapsed
    return send


def server_env(url: str) -> dict:
    return {"DATABASE_URL": url, "SECRET_KEY": "benchmark", "GITHUB_WEBHOOK_SECRET": SECRET,
            "SCHEDULER_ENABLED": "false"}


def measure_concurrency(url: str, size: int, quick: bool) -> None:
    warmup, requests = (16, 64) if quick else (32, 400)
    check = pages(common.utc_today())[0][2]
    with bench_webhooks.gunicorn("wsgi:app", ROOT, server_env(url)) as port:
        client = bench_pages.Client(port)
        bench_pages.signed_in(client.request("POST", "/login", login_form(client))[0])
        cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
        client.close()
        send = get_sender("/customers", cookie, check)
        load(port, send, warmup)
        portal = load(port, send, requests)
    with bench_webhooks.gunicorn("webhook_floor:hello", HERE, server_env(url)) as port:
        send = get_sender("/hello", "", lambda body: None if body == "Hello, World!" else "not the greeting")
        load(port, send, warmup * 4)
        hello = load(port, send, requests * 4)
    print(f"\n  /customers at {size:,} customers, {bench_webhooks.CLIENTS} clients, gunicorn "
          f"{', '.join(bench_webhooks.gunicorn_settings())}")
    show("GET /customers (signed in)", portal)
    show("baseline: bare Flask hello route", hello)
    print(f"  ratio {portal['rps'] / hello['rps']:.3f}x of the bare route's throughput")


# --- webhooks during a recalculation -----------------------------------------------------------------------------------

def recalculate_forever(url: str) -> None:
    """Full recalculations as the health job runs them on a day's first run (every customer, each batch committed,
    then its rest: HEALTH_JOB_REST_PERCENT), one after the other, until killed; a line on stdout as each starts.
    Each comes with a new version of the same health settings, as after a settings change, so that it writes every
    customer's snapshot again (a recalculation that changes nothing writes nothing)."""
    app = common.make_app(url)
    with app.app_context():
        while True:
            newest = snapshots.current_settings()
            again = HealthSettings(version=newest.version + 1, **vars(snapshots.weights_of(newest)))
            db.session.add(again)
            db.session.commit()
            print("recalculating", flush=True)
            snapshots.recalculate(settings=again, commit_each=True, rest=app.config["HEALTH_JOB_REST_PERCENT"] / 100)


def webhook_sender(signed: list):
    def send(connection, index) -> float:
        return bench_webhooks.post(connection, "/webhooks/github", signed, index)
    return send


def measure_webhooks(url: str, size: int, quick: bool) -> None:
    warmup, requests = (50, 200) if quick else (200, 2000)
    rng = random.Random(common.SEED)
    logins = [f"org-{key}" for key in rng.sample(range(1, size + 1), min(size, 1000))]
    signed = bench_webhooks.deliveries(logins, common.utc_today().isoformat())
    send = webhook_sender(signed)
    with bench_webhooks.gunicorn("wsgi:app", ROOT, server_env(url)) as port:
        load(port, send, warmup)
        alone = load(port, send, requests)
        recalculation = subprocess.Popen(
            [sys.executable, "-c", f"import growth; growth.recalculate_forever({url!r})"],
            cwd=HERE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE)})
        try:
            recalculation.stdout.readline()  # the first recalculation has begun
            time.sleep(1)  # past the settings read and into the queries
            during = load(port, send, requests)
        finally:
            recalculation.terminate()
            recalculation.wait(timeout=60)
        started = 1 + sum(1 for _ in recalculation.stdout)
    print(f"\n  GitHub webhooks at {size:,} customers, {bench_webhooks.CLIENTS} clients, {requests} deliveries each "
          f"(for {len(logins):,} customers)")
    show("alone", alone)
    show(f"while full recalculations run ({started} started)", during)
    rps, p99 = during["rps"] / alone["rps"], during["p99"] / alone["p99"]
    print(f"  throughput {rps:.2f}x (goal at least {GOALS['webhook_rps']:g}x): {verdict(rps >= GOALS['webhook_rps'])}; "
          f"p99 {p99:.2f}x (goal at most {GOALS['webhook_p99']:g}x): {verdict(p99 <= GOALS['webhook_p99'])}")


# --- main --------------------------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="comma-separated customer counts, smallest first (default 1000,10000,100000)")
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="a PostgreSQL URL: its server holds the databases, named after it (<name>_<size>)")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} and fewer requests: a smoke run")
    parser.add_argument("--only", default=",".join(FIGURES), help=f"comma-separated subset of {', '.join(FIGURES)}")
    parser.add_argument("--keep", action="store_true", help="keep the databases at the end")
    parser.add_argument("--reuse", action="store_true", help="reuse a database this script built today")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.WARNING)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if set(chosen) - set(FIGURES):
        raise SystemExit(f"unknown figure(s) {', '.join(set(chosen) - set(FIGURES))}; expected {', '.join(FIGURES)}")
    sizes = sorted(int(size) for size in args.sizes.split(",")) if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    if len(sizes) < 2 or make_url(args.database_url).get_backend_name() != "postgresql":
        raise SystemExit("growth benchmark: two sizes or more, and a PostgreSQL --database-url")
    today = common.utc_today()
    urls = {size: database_url(args.database_url, str(size)) for size in sizes}
    with server(args.database_url) as connection:
        settings = dict(connection.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'shared_buffers', 'work_mem')").fetchall())
        version = connection.execute("SHOW server_version").fetchone()[0]
    print(f"growth: {', '.join(f'{size:,}' for size in sizes)} customers, {growth_build.DAYS} days of history, "
          f"PostgreSQL {version} ({', '.join(f'{key} {value}' for key, value in sorted(settings.items()))})")
    started = time.perf_counter()
    facts = {size: prepare(url, size, today, args.reuse, JOB_CAP[args.quick]) for size, url in urls.items()}
    print(f"  databases ready in {time.perf_counter() - started:.0f} s")
    runs_ = {
        "pages": lambda: report_pages(measure_pages(urls, today, args.quick), sizes),
        "jobs": lambda: report_jobs(facts, sizes, JOB_CAP[args.quick]),
        "incremental": lambda: measure_incremental(urls[sizes[-1]], sizes[-1], today),
        "transfer": lambda: measure_transfer(args.database_url, urls, sizes, Path(workdir), TRANSFER_CAP[args.quick]),
        "concurrency": lambda: measure_concurrency(urls[sizes[-1]], sizes[-1], args.quick),
        "webhooks": lambda: measure_webhooks(urls[sizes[-1]], sizes[-1], args.quick),
    }
    failed = []
    with tempfile.TemporaryDirectory(prefix="portal-growth-") as workdir:
        for name in FIGURES:
            if name in chosen:
                began = time.perf_counter()
                try:
                    runs_[name]()
                except Exception as error:  # noqa: BLE001 - a failure of the portal is a finding too
                    first = str(error).splitlines()[0] if str(error) else ""
                    print(f"  {name} FAILED: {type(error).__name__}: {first[:300]}")
                    failed.append(name)
                print(f"  ({name}: {time.perf_counter() - began:.0f} s)")
    if not args.keep:
        for url in urls.values():
            drop(url)
    print(f"\ngrowth: {time.perf_counter() - started:.0f} s in all")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
