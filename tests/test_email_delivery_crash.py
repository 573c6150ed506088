"""A delivery run killed mid-handoff, in a real process against a real SMTP server: every email arrives, at most
one twice, and that one under the same Message-ID."""
from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import clock
from portal.customers import service
from portal.emails import delivery, outbox
from portal.extensions import db
from portal.models import AuditLog, Customer, EmailNotification
from tests.email_peers import KillingCollector, SmtpServer, app_with, dispose, mail_config

EN = EmailNotification
WORKER = Path(__file__).with_name("email_worker.py")
CUSTOMERS = ["ada", "bob", "cy"]
DIGESTS = 20


@pytest.fixture
def killer(request):
    """The SMTP server that kills the delivering process when message number request.param is in."""
    server = SmtpServer(collector=KillingCollector(at=request.param)).start()
    yield server
    server.stop()


@pytest.fixture(name="app")
def crash_app(database_url, killer):
    app = app_with(database_url, **mail_config(killer.port))
    yield app
    dispose(app)


def queue_emails() -> None:
    """Three welcome emails first (rows 1 to 3), then twenty team digests."""
    for name in CUSTOMERS:
        service.add_customer({"email": f"{name}@example.com", "organization": name.title(), "github_username": name},
                             "test")
    outbox.queue_rows([{"kind": "team_digest", "recipient": f"user{n}@example.com", "dedupe_key": f"digest-{n}",
                        "payload": {"name": f"User {n}", "week": "2026-W47", "first_day": "2026-11-16",
                                    "last_day": "2026-11-22", "signups": [], "completions": [], "at_risk": [],
                                    "blockers": [], "failed_emails": 0}} for n in range(DIGESTS)])
    db.session.commit()


def message_id(message) -> str:
    return str(message["Message-ID"]).strip().strip("<>")


@pytest.mark.parametrize("killer", [2, 14], indirect=True, ids=["at-a-welcome-email", "mid-second-batch"])
def test_a_run_killed_mid_handoff_sends_one_email_twice_under_the_same_message_id(ctx, client, auth, killer,
                                                                                   database_url, tmp_path):
    queue_emails()
    total, at = len(CUSTOMERS) + DIGESTS, killer.collector.at
    # The dead run started an hour ago, so its five-minute lease has ended by the time the test looks.
    started = clock.now() - dt.timedelta(hours=1)
    process = subprocess.Popen([sys.executable, str(WORKER), database_url, str(killer.port), str(tmp_path), "1",
                                started.isoformat()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer.collector.process = process
    _, err = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, err

    # What the dead run left: the emails before the k-th recorded as sent, the k-th marked as being handed over.
    first = list(killer.messages)
    assert len(first) == at
    db.session.expire_all()
    by_recipient = {email.recipient: email for email in db.session.scalars(select(EN))}
    *accepted, (last_recipients, last_message) = first
    for recipients, message in accepted:
        email = by_recipient[recipients[0]]
        assert (email.status, email.provider_message_id, email.sending_at) == ("sent", message_id(message), None)
    interrupted = by_recipient[last_recipients[0]]
    assert interrupted.status == "queued" and interrupted.sending_at is not None
    assert interrupted.provider_message_id == message_id(last_message)
    assert interrupted.shown_status(clock.now()) == "sending (interrupted)"
    auth.login("viewer")
    page = client.get(f"/emails/{interrupted.id}").get_data(as_text=True)
    assert "sending (interrupted)" in page and f"&lt;{message_id(last_message)}&gt;" in page
    assert client.get("/emails").get_data(as_text=True).count(">sending (interrupted)</span>") == 1

    counts = delivery.deliver_due()
    assert counts == {"sent": total - at + 1, "retried": 0, "failed": 0, "suppressed": 0}

    received = Counter(recipients[0] for recipients, _ in killer.messages)
    assert len(received) == total and len(killer.messages) == total + 1
    assert [address for address, times in received.items() if times > 1] == last_recipients
    copies = [message_id(message) for recipients, message in killer.messages if recipients == last_recipients]
    assert copies == [message_id(last_message)] * 2
    db.session.expire_all()
    emails = list(db.session.scalars(select(EN)))
    assert {(email.status, email.attempts, email.sending_at, email.claim_token) for email in emails} == \
        {("sent", 1, None, None)}
    resent = db.session.get(EN, interrupted.id)
    assert resent.provider_message_id == message_id(last_message)
    assert "an earlier run stopped while handing this email over" in resent.last_error
    assert db.session.get(EN, interrupted.id).shown_status(clock.now()) == "sent"
    # Each welcome ticked its step once, the re-sent one included.
    assert all(customer.onboarding.welcome_email_sent for customer in db.session.scalars(select(Customer)))
    assert len(db.session.scalars(select(AuditLog).filter_by(field="welcome_email_sent")).all()) == len(CUSTOMERS)
