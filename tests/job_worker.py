"""A portal process for the one-runner test: its own scheduler, one job firing every second, until a deadline.

Usage: python tests/job_worker.py DATABASE_URL; prints "ready", then reads how many seconds to run from stdin,
so that two workers start their schedulers together however long their imports took.
"""
from __future__ import annotations

import logging
import os
import sys
import time

from portal import create_app
from portal.jobs.registry import Job, Registry
from portal.jobs.scheduler import scheduler


def tick(context) -> dict[str, int]:
    # Quick on purpose: the other process may fire after this run ended, and must still stand aside.
    time.sleep(0.05)
    print(f"ran {os.getpid()} {context.now.isoformat()}", flush=True)
    return {"pid": os.getpid()}


def main(database_url: str) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = create_app({"SECRET_KEY": "worker", "SQLALCHEMY_DATABASE_URI": database_url, "SCHEDULER_ENABLED": False})
    scheduler.state(app).registry = Registry([Job("tick", "Every second", "Every second", {"second": "*"}, tick)])
    print("ready", flush=True)
    seconds = float(sys.stdin.readline())
    scheduler.start(app)
    time.sleep(seconds)
    scheduler.shutdown(app)


if __name__ == "__main__":
    main(sys.argv[1])
