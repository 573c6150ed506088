"""A delivery run in its own OS process: python tests/email_worker.py URL PORT BARRIER N [NOW].

It marks itself ready in the BARRIER directory and waits for N workers to be ready, so that they really overlap;
small claim batches make them interleave. NOW (ISO 8601) is the run's clock, as deliver_due(now) takes it. It prints
its counts as JSON.
"""
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal import create_app  # noqa: E402
from portal.emails import delivery  # noqa: E402


def main() -> None:
    url, port, barrier, parties = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    now = dt.datetime.fromisoformat(sys.argv[5]) if len(sys.argv) > 5 else None
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-secret", "SCHEDULER_ENABLED": False,
                      "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_SUPPRESS_SEND": False,
                      "MAIL_DEFAULT_SENDER": "cs@example.com", "PORTAL_BASE_URL": "http://portal.test"})
    delivery.CLAIM_BATCH = 10
    with app.app_context():
        (barrier / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(barrier.iterdir())) < parties and time.monotonic() < deadline:
            time.sleep(0.01)
        print(json.dumps(delivery.deliver_due(now)))


if __name__ == "__main__":
    main()
