"""Reliability: the inbound endpoints under load and through faults, on gunicorn and PostgreSQL, checked against
the database afterwards.

Each row serves the portal under gunicorn (the repository's gunicorn.conf.py, 2 workers) on a fresh copy of the
data (12 customers with metrics-API keys) and drives it from 8 sender threads: signed GitHub `issues` labeled and
`pull_request` opened / closed deliveries, landing-site `signup` and `account_created` events and metrics-API
`issue_resolution` events, 10% of them sent a second time with the same id (tests/traffic.py). Then:

  load       no fault: throughput and latency
  kill       SIGKILL of one worker mid-load; gunicorn starts another
  terminate  pg_terminate_backend() of every connection to the database mid-load
  cut        the database refusing connections for 5 s (gunicorn reaches it through tests/faults.py's relay)

and after each: every acknowledged (2xx) event stored exactly once, the engagement counts exactly those the
distinct events add, every second send answered 200 duplicate, no 500, nothing lost. A sender retries what got no
answer or 409 at once, and a 503 after its Retry-After or as soon as the database is back.

    .venv/bin/python benchmarks/reliability.py [--quick] [--only load,kill,terminate,cut]
                                               [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

A database of its own is created on the server and dropped at the end; the server itself is never stopped.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' traffic and relay

from portal import create_app  # noqa: E402
from portal.health import snapshots  # noqa: E402
from portal.extensions import db  # noqa: E402
from tests import traffic, traffic_checks  # noqa: E402
from tests.gunicorn_server import Server  # noqa: E402
from tests.faults import Relay  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROWS = ("load", "kill", "terminate", "cut")
EACH = {"load": (2000, 250), "kill": (500, 150), "terminate": (500, 150), "cut": (500, 150)}  # (full, --quick)
SENDERS, CUSTOMERS = 8, 12
FAULT_AT = 0.4  # the fault lands once this share of the events is acknowledged
CUT_SECONDS = 5
RECOVERY_GOAL = 2.0  # seconds from the database's return to the first 2xx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events per sender, a smoke test")
    parser.add_argument("--only", default=",".join(ROWS), help=f"comma-separated subset of {', '.join(ROWS)}")
    parser.add_argument("--server", default=SERVER, help="a PostgreSQL server to create the scratch database on")
    return parser.parse_args()


@dataclass
class Row:
    name: str
    figures: dict
    findings: traffic_checks.Findings
    traffic: traffic.Traffic
    log: Path
    recovery: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings.problems


class Scratch:
    """A database of its own on the server, with the app's migrations; dropped at the end."""

    def __init__(self, server: str):
        self.server, self.name = server, f"portal_reliability_{uuid.uuid4().hex[:8]}"
        self.url = make_url(server).set(database=self.name).render_as_string(hide_password=False)
        self.admin(f'CREATE DATABASE "{self.name}"')
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": self.url, "SCHEDULER_ENABLED": False,
                               "SECRET_KEY": "reliability"})
        with self.app.app_context():
            upgrade()
            db.engine.dispose()

    def admin(self, statement: str) -> None:
        engine = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(statement))
        engine.dispose()

    def reset(self) -> list[traffic.Seeded]:
        """Every table emptied, the default settings, the customers seeded."""
        with self.app.app_context():
            tables = ", ".join(table.name for table in db.metadata.sorted_tables)
            with db.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            snapshots.current_settings()
            db.session.commit()
            seeded = traffic.seed(CUSTOMERS)
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
            db.session.remove()
            db.engine.dispose()
        return seeded

    def terminate_connections(self) -> int:
        libpq = make_url(self.server).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as connection:
            return len(connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,)).fetchall())

    def drop(self) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def kill(run: traffic.Traffic, server: Server, notes: list[str], **_) -> None:
    run.mark("fault")
    victim, replaced = server.kill_worker()
    notes.append(f"worker {victim} killed after {len(run.acknowledged)} acknowledged; gunicorn started another "
                 f"{replaced:.2f} s later")


def terminate(run: traffic.Traffic, scratch: Scratch, notes: list[str], **_) -> None:
    terminated = scratch.terminate_connections()
    run.mark("fault")
    notes.append(f"{terminated} connections terminated after {len(run.acknowledged)} acknowledged")


def cut(run: traffic.Traffic, relay: Relay, notes: list[str], **_) -> None:
    run.restored.clear()
    relay.cut()
    time.sleep(CUT_SECONDS)
    relay.start()
    run.mark("fault")
    run.restored.set()
    notes.append(f"database refused connections for {CUT_SECONDS} s after {len(run.acknowledged)} acknowledged")


FAULTS = {"kill": kill, "terminate": terminate, "cut": cut}


def measure(name: str, scratch: Scratch, workdir: Path, each: int, seed: int) -> Row:
    seeded = scratch.reset()
    batches = traffic.plan(seeded, SENDERS, each, seed=seed)
    url = make_url(scratch.url)
    relay = Relay(url.host, url.port or 5432) if name == "cut" else None
    server = Server(relay.url(scratch.url) if relay else scratch.url, workdir / f"{seed}-{name}.log", traffic.SETTINGS)
    server.start()
    run, notes = traffic.Traffic(server.port, batches), []
    injector = None
    if name in FAULTS:
        def inject():
            run.wait_for(int(FAULT_AT * run.distinct))
            FAULTS[name](run=run, server=server, scratch=scratch, relay=relay, notes=notes)

        injector = threading.Thread(target=inject)
        injector.start()
    try:
        run.run()
        notes.append("worker CPU seconds: " + ", ".join(f"{seconds:.1f}" for seconds in server.cpu_seconds().values()))
    finally:
        if injector:
            injector.join()
        server.stop()
        if relay:
            relay.cut()
    findings = traffic_checks.check(scratch.url, run, seeded)
    row = Row(name, run.figures(), findings, run, server.log, notes=notes)
    if "fault" in run.marks:
        row.recovery = run.first_ok.get("fault", float("inf")) - run.marks["fault"]
    judge(row, server)
    return row


def judge(row: Row, server: Server) -> None:
    """The log's account of the run, and the rules of each fault, added to the row's findings."""
    lines, problems, run = server.outage_lines(), row.findings.problems, row.traffic
    if lines["tracebacks"]:
        problems.append(f"{lines['tracebacks']} tracebacks in the gunicorn log")
    if row.name != "load":
        row.notes.append(f"log: {lines['unavailable']} 'database unavailable' and {lines['available']} "
                         f"'available again' lines, {lines['refused']} answers 503 by their count; "
                         f"{run.no_answer} requests got no answer, {run.statuses[409]} answered 409")
    if row.name in ("terminate", "cut"):  # one outage: at most a line per worker when it begins, one when it ends
        if not 1 <= lines["unavailable"] <= server.expected_workers():
            problems.append(f"{lines['unavailable']} 'database unavailable' lines for one outage and "
                            f"{server.expected_workers()} workers")
        if lines["available"] != lines["unavailable"] or lines["refused"] != run.statuses[503]:
            problems.append(f"the log counts {lines['refused']} answers 503, the senders {run.statuses[503]}")
        if row.name == "cut" and not run.statuses[503]:
            problems.append("no answer was 503 during the cut")
    if row.recovery is not None and row.recovery > RECOVERY_GOAL:
        problems.append(f"the first 2xx came {row.recovery:.2f} s after the fault, more than {RECOVERY_GOAL:g} s")


def report(rows: list[Row]) -> None:
    header = ("row", "requests", "acked", "stored", "dupl.", "503", "500", "lost", "recovery", "req/s", "p50 ms",
              "p99 ms", "result")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        figures, findings, run = row.figures, row.findings, row.traffic
        recovery = "" if row.recovery is None else f"{row.recovery:.2f} s"
        cells = (row.name, f"{figures['requests']:,}", f"{findings.acknowledged:,}", f"{findings.stored:,}",
                 f"{findings.duplicates:,}", str(run.statuses[503]), str(run.statuses[500]), str(findings.lost),
                 recovery, f"{figures['rps']:.0f}", f"{figures['p50']:.1f}", f"{figures['p99']:.1f}",
                 "ok" if row.ok else "FAILED")
        print("| " + " | ".join(cells) + " |")
    print("\nEvery row: each acknowledged (2xx) event stored once, none stored that was not, the engagement counts equal"
          "\nto those of the distinct acknowledged events, each event answered processed once, second sends 200"
          "\nduplicate, no 500, no traceback in the log. terminate and cut: at most one 'database unavailable' line per"
          f"\nworker, the log's count of 503s equal to the senders'. recovery: the first 2xx after the fault (goal"
          f" {RECOVERY_GOAL:g} s).\n")
    for row in rows:
        for line in row.notes + [f"PROBLEM: {problem}" for problem in row.findings.problems]:
            print(f"  {row.name}: {line}")


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.WARNING)  # keeps Alembic's INFO lines out of the table
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(chosen) - set(ROWS):
        raise SystemExit(f"unknown row(s): {', '.join(sorted(unknown))}; expected {', '.join(ROWS)}")
    scratch = Scratch(args.server)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="portal-reliability-") as folder:
            for seed, name in enumerate(chosen, start=1):
                each = EACH[name][args.quick]
                print(f"{name}: {SENDERS} senders x {each:,} events (+10% sent twice) on {scratch.name}")
                rows.append(measure(name, scratch, Path(folder), each, seed))
                if not rows[-1].ok:
                    print(rows[-1].log.read_text()[-3000:])
    finally:
        scratch.drop()
    report(rows)
    if not all(row.ok for row in rows):
        raise SystemExit("\nfailed: " + ", ".join(row.name for row in rows if not row.ok))


if __name__ == "__main__":
    main()
