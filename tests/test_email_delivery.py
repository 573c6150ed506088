"""Delivery against real peers: an aiosmtpd server and a ConvertKit stand-in over HTTP."""
from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.customers import service
from portal.emails import delivery
from portal.extensions import db
from portal.models import AuditLog, Customer, EmailNotification, Event
from tests.email_peers import SECRET, app_with, convertkit, dispose, mail_config, smtp_app, smtp_server  # noqa: F401

EN = EmailNotification


def add(email="ada@example.com", login="ada-labs", organization="Ada Labs", **extra) -> Customer:
    customer = service.add_customer({"email": email, "organization": organization, "github_username": login}, "test",
                                    **extra)
    db.session.commit()
    return customer


def emails(**where) -> list[EN]:
    return list(db.session.scalars(select(EN).filter_by(**where).order_by(EN.id)))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.netloc == "portal.test"
    return parts.path


def test_the_welcome_email_goes_out_over_smtp_with_both_parts_and_an_unsubscribe_link(ctx, client, smtp_server):
    customer = add()
    [queued] = emails()
    assert (queued.kind, queued.status, queued.payload, queued.recipient) == (
        "milestone", "queued", {"milestone": "welcome"}, "ada@example.com")
    assert customer.onboarding.welcome_email_sent is False  # queued is not sent

    assert delivery.deliver_due() == {"sent": 1, "retried": 0, "failed": 0, "suppressed": 0}

    [(recipients, message)] = smtp_server.messages
    assert recipients == ["ada@example.com"]
    assert message["Subject"] == "Welcome to the early-access programme"
    assert message["From"] == "Customer success <cs@example.com>"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Ada Labs team" in text and "<p>Hello Ada Labs team,</p>" in html
    unsubscribe = str(message["List-Unsubscribe"]).strip().strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Unsubscribe: {unsubscribe}" in text and f'href="{unsubscribe}"' in html

    db.session.expire_all()
    sent = db.session.get(EN, queued.id)
    assert (sent.status, sent.channel, sent.attempts, sent.last_error) == ("sent", "smtp", 1, "")
    assert f"<{sent.provider_message_id}>" == message["Message-ID"]
    assert "." not in sent.provider_message_id.split("@")[0]  # the provider's events are matched before a dot
    assert sent.body_text == text.replace("\r\n", "\n") or sent.body_text.strip() == text.strip()
    assert customer.onboarding.welcome_email_sent is True
    assert db.session.scalars(select(AuditLog).filter_by(field="welcome_email_sent", actor="email delivery")).one()

    # The link shows a confirmation first: a GET changes nothing.
    page = client.get(path_of(unsubscribe))
    assert page.status_code == 200 and b"Stop all emails to ada@example.com" in page.data
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).unsubscribed_at is None
    done = client.post(path_of(unsubscribe))  # no CSRF token: the signed link is the proof (RFC 8058)
    assert done.status_code == 200 and b"You are unsubscribed" in done.data
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).unsubscribed_at is not None
    assert db.session.scalars(select(AuditLog).filter_by(field="unsubscribed_at")).one().actor == "customer (email link)"


def test_one_click_unsubscribe_post_and_tampered_links(ctx, client):
    from portal.emails import tokens

    customer = add()
    with ctx.test_request_context():
        token = tokens.unsubscribe_token(customer.id)
    response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    again = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # idempotent
    assert len(db.session.scalars(select(AuditLog).filter_by(field="unsubscribed_at")).all()) == 1
    for bad in (token[:-2] + "xx", "nonsense", "a" * 300):
        for method in (client.get, client.post):
            answer = method(f"/unsubscribe/{bad}")
            assert answer.status_code == 400 and b"This link cannot be used" in answer.data


def test_no_smtp_configured_leaves_emails_queued(database_url):
    app = app_with(database_url, MAIL_SERVER=None)
    try:
        with app.app_context():
            add()
            assert delivery.deliver_due() == {"sent": 0, "retried": 0, "failed": 0, "suppressed": 0}
            [email] = emails()
            assert (email.status, email.attempts, email.claim_token) == ("queued", 0, None)
    finally:
        dispose(app)


@pytest.mark.parametrize("why", ["unsubscribed", "churned", "bounced", "spam report"])
def test_suppressed_customers_get_nothing(ctx, smtp_server, why):
    customer = add()
    other = add("bob@example.com", "bob-co", "Bob Co")
    if why == "unsubscribed":
        customer.unsubscribed_at = dt.datetime.now(dt.timezone.utc)
    elif why == "churned":
        customer.status = "churned"
    elif why == "bounced":
        db.session.add(EN(customer_id=customer.id, kind="milestone", dedupe_key="old", recipient=customer.email,
                          status="bounced"))
    else:
        db.session.add(Event(source="email_provider", delivery_id="ev1", event_type="spamreport",
                             customer_id=customer.id, payload={}))
    db.session.commit()
    assert delivery.deliver_due() == {"sent": 1, "retried": 0, "failed": 0, "suppressed": 1}
    assert [recipients for recipients, _ in smtp_server.messages] == [["bob@example.com"]]
    db.session.expire_all()
    welcome = db.session.scalars(select(EN).filter_by(customer_id=customer.id, dedupe_key="milestone:c1001:welcome")).one()
    assert (welcome.status, welcome.last_error) == ("failed", f"suppressed: {why}")
    assert db.session.get(Customer, other.id).onboarding.welcome_email_sent is True
    assert db.session.get(Customer, customer.id).onboarding.welcome_email_sent is False


def test_milestones_go_to_convertkit_as_tags(database_url, smtp_server, convertkit, caplog):
    caplog.set_level(logging.DEBUG)
    app = app_with(database_url, **mail_config(smtp_server.port, CONVERTKIT_API_SECRET=SECRET,
                                               CONVERTKIT_BASE_URL=convertkit.url))
    try:
        with app.app_context():
            customer = add()
            service.set_step(customer, "account_created", True, "test")
            add("bob@example.com", "bob-co", "Bob Co")
            db.session.commit()
            assert delivery.deliver_due()["sent"] == 3
            assert smtp_server.messages == []
            assert convertkit.tagged() == [("milestone_welcome", "ada@example.com"),
                                           ("milestone_account_created", "ada@example.com"),
                                           ("milestone_welcome", "bob@example.com")]
            # The tags are listed once per run and each is created once.
            assert [(method, path) for method, path, _ in convertkit.calls].count(("GET", "/v3/tags")) == 1
            assert [path for method, path, _ in convertkit.calls if method == "POST" and path == "/v3/tags"] == \
                ["/v3/tags"] * 2
            assert all(body["api_secret"] == SECRET for _, _, body in convertkit.calls)
            assert {email.channel for email in emails()} == {"convertkit"}
            assert db.session.get(Customer, customer.id).onboarding.welcome_email_sent is True
    finally:
        dispose(app)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("mode", ["fail", "slow"])
def test_convertkit_failure_falls_back_to_smtp(database_url, smtp_server, convertkit, caplog, mode):
    caplog.set_level(logging.DEBUG)
    convertkit.mode = mode
    app = app_with(database_url, **mail_config(smtp_server.port, CONVERTKIT_API_SECRET=SECRET,
                                               CONVERTKIT_BASE_URL=convertkit.url, CONVERTKIT_TIMEOUT_SECONDS=0.3))
    try:
        with app.app_context():
            add()
            add("bob@example.com", "bob-co", "Bob Co")
            assert delivery.deliver_due()["sent"] == 2
            assert sorted(recipients[0] for recipients, _ in smtp_server.messages) == ["ada@example.com", "bob@example.com"]
            # One failed call, not one per email: the run stops asking ConvertKit after its first failure.
            assert len(convertkit.calls) == 1
            for email in emails():
                assert email.channel == "smtp" and email.status == "sent"
                assert "ConvertKit: GET /tags:" in email.last_error and "falling back to SMTP" in email.last_error
                assert SECRET not in email.last_error
    finally:
        dispose(app)
    assert SECRET not in caplog.text


def test_a_slow_convertkit_within_its_timeout_still_tags(database_url, smtp_server, convertkit):
    convertkit.mode = "sluggish"
    app = app_with(database_url, **mail_config(smtp_server.port, CONVERTKIT_API_SECRET=SECRET,
                                               CONVERTKIT_BASE_URL=convertkit.url, CONVERTKIT_TIMEOUT_SECONDS=5))
    try:
        with app.app_context():
            add()
            assert delivery.deliver_due()["sent"] == 1
            assert convertkit.tagged() == [("milestone_welcome", "ada@example.com")] and smtp_server.messages == []
            [email] = emails()
            assert (email.channel, email.status, email.last_error) == ("convertkit", "sent", "")
    finally:
        dispose(app)


def test_smtp_down_backs_off_then_fails_after_eight_attempts(database_url):
    from tests.email_peers import free_port

    app = app_with(database_url, **mail_config(free_port()))
    try:
        with app.app_context():
            add()
            now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
            waits = []
            for attempt in range(1, 9):
                counts = delivery.deliver_due(now)
                [email] = emails()
                assert email.attempts == attempt and "SMTP: ConnectionRefusedError" in email.last_error
                if attempt < 8:
                    assert counts["retried"] == 1 and email.status == "queued"
                    assert delivery.deliver_due(email.next_attempt_at - dt.timedelta(seconds=1))["retried"] == 0
                    waits.append(round((email.next_attempt_at - now).total_seconds() / 60))
                    now = email.next_attempt_at
            assert waits == [1, 2, 4, 8, 16, 32, 60]
            assert counts["failed"] == 1 and (email.status, email.next_attempt_at) == ("failed", None)
    finally:
        dispose(app)


def test_smtp_down_then_up_sends_each_email_once(database_url):
    from tests.email_peers import SmtpServer, free_port

    port = free_port()
    app = app_with(database_url, **mail_config(port))
    try:
        with app.app_context():
            for number in range(5):
                add(f"user{number}@example.com", f"user-{number}", f"Org {number}")
            now = dt.datetime.now(dt.timezone.utc)
            assert delivery.deliver_due(now)["retried"] == 5
            assert delivery.deliver_due(now)["retried"] == 0  # not due yet
            server = SmtpServer(port).start()
            try:
                later = now + dt.timedelta(minutes=1)
                assert delivery.deliver_due(later)["sent"] == 5
                assert delivery.deliver_due(later + dt.timedelta(hours=2)) == dict.fromkeys(delivery.OUTCOMES, 0)
            finally:
                server.stop()
            assert sorted(r[0] for r, _ in server.messages) == [f"user{n}@example.com" for n in range(5)]
            assert {(e.status, e.attempts) for e in emails()} == {("sent", 2)}
    finally:
        dispose(app)


def test_two_processes_delivering_at_once_send_every_email_once(ctx, database_url, smtp_server, tmp_path):
    import json
    import subprocess
    import sys
    from collections import Counter
    from pathlib import Path

    from portal.emails import outbox

    count = 240
    outbox.queue_rows([{"kind": "team_digest", "recipient": f"user{n}@example.com", "dedupe_key": f"digest-{n}",
                        "payload": {"name": f"User {n}", "week": "2026-W47", "first_day": "2026-11-16",
                                    "last_day": "2026-11-22", "signups": [], "completions": [], "at_risk": [],
                                    "blockers": [], "failed_emails": 0}} for n in range(count)])
    db.session.commit()
    worker = Path(__file__).with_name("email_worker.py")
    processes = [subprocess.Popen([sys.executable, str(worker), database_url, str(smtp_server.port), str(tmp_path), "2"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err for _, err in results]
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert sum(c["sent"] for c in counts) == count and all(c["sent"] > 0 for c in counts), counts
    received = Counter(recipients[0] for recipients, _ in smtp_server.messages)
    assert len(received) == count and set(received.values()) == {1}
    db.session.expire_all()
    assert {(e.status, e.attempts) for e in emails()} == {("sent", 1)}


def test_limit_and_progress(ctx, smtp_server):
    for number in range(3):
        add(f"user{number}@example.com", f"user-{number}", f"Org {number}")
    seen = []
    assert delivery.deliver_due(limit=2, progress=lambda done, total: seen.append((done, total)))["sent"] == 2
    assert seen == [(1, 2), (2, 2)] and len(smtp_server.messages) == 2
    assert delivery.deliver_due()["sent"] == 1


@pytest.fixture
def answering(request):
    """An SMTP server that answers ada@example.com as request.param lists: [(stage, answer), ...]."""
    from tests.email_peers import AnsweringCollector, SmtpServer

    server = SmtpServer(collector=AnsweringCollector({"ada@example.com": request.param})).start()
    yield server
    server.stop()


@pytest.fixture
def answered(database_url, answering):
    app = app_with(database_url, **mail_config(answering.port))
    with app.app_context():
        yield answering
    dispose(app)


NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("answering, error", [
    ([("RCPT", "550 5.1.1 No such user here")], "SMTP: recipient refused: 550 5.1.1 No such user here"),
    ([("DATA", "554 5.7.1 Message refused as spam")], "SMTP: 554 5.7.1 Message refused as spam"),
], indirect=["answering"], ids=["550-to-the-recipient", "554-to-the-message"])
def test_a_permanent_refusal_fails_the_email_at_once(answered, error):
    add()
    add("bob@example.com", "bob-co", "Bob Co")
    assert delivery.deliver_due(NOW) == {"sent": 1, "retried": 0, "failed": 1, "suppressed": 0}
    ada, bob = emails()
    assert (ada.status, ada.attempts, ada.next_attempt_at, ada.last_error) == ("failed", 1, None, error)
    assert bob.status == "sent"  # the same connection carried on
    assert [recipients for recipients, _ in answered.messages] == [["bob@example.com"]]
    assert delivery.deliver_due(NOW + dt.timedelta(days=1)) == dict.fromkeys(delivery.OUTCOMES, 0)
    assert db.session.get(Customer, ada.customer_id).onboarding.welcome_email_sent is False


@pytest.mark.parametrize("answering, error", [
    ([("RCPT", "451 4.7.1 Greylisted, try again in a minute")],
     "SMTP: recipient refused: 451 4.7.1 Greylisted, try again in a minute"),
    ([("DATA", "452 4.3.1 Insufficient system storage")], "SMTP: 452 4.3.1 Insufficient system storage"),
], indirect=["answering"], ids=["451-to-the-recipient", "452-to-the-message"])
def test_a_temporary_refusal_is_retried_after_a_minute(answered, error):
    add()
    add("bob@example.com", "bob-co", "Bob Co")
    assert delivery.deliver_due(NOW) == {"sent": 1, "retried": 1, "failed": 0, "suppressed": 0}
    ada, _ = emails()
    assert (ada.status, ada.attempts, ada.next_attempt_at, ada.last_error) == (
        "queued", 1, NOW + dt.timedelta(minutes=1), error)
    assert delivery.deliver_due(NOW + dt.timedelta(seconds=59))["sent"] == 0
    assert delivery.deliver_due(NOW + dt.timedelta(minutes=1))["sent"] == 1
    db.session.expire_all()
    assert (db.session.get(EN, ada.id).status, db.session.get(EN, ada.id).attempts) == ("sent", 2)
    assert sorted(recipients[0] for recipients, _ in answered.messages) == ["ada@example.com", "bob@example.com"]


@pytest.mark.parametrize("answering", [[("DATA", "drop")]], indirect=True, ids=["dropped-after-the-message"])
def test_a_connection_dropped_mid_send_is_retried_under_the_same_message_id(answered):
    add()
    add("bob@example.com", "bob-co", "Bob Co")
    add("cy@example.com", "cy-co", "Cy Co")
    # Ada's welcome goes first and loses the connection; the next email opens another.
    assert delivery.deliver_due(NOW) == {"sent": 2, "retried": 1, "failed": 0, "suppressed": 0}
    ada = emails()[0]
    assert (ada.status, ada.attempts) == ("queued", 1) and "SMTPServerDisconnected" in ada.last_error
    assert delivery.deliver_due(NOW + dt.timedelta(minutes=1))["sent"] == 1
    [(_, dropped)] = answered.collector.dropped
    [accepted] = [message for recipients, message in answered.messages if recipients == ["ada@example.com"]]
    # Whether or not the server kept the first copy, a receiver can tell the second is the same email.
    assert accepted["Message-ID"] == dropped["Message-ID"]
    db.session.expire_all()
    assert f"<{db.session.get(EN, ada.id).provider_message_id}>" == accepted["Message-ID"]


def interrupted(channel: str) -> EN:
    """The welcome email as a run killed while handing it to channel leaves it: marked, its lease over."""
    [welcome] = emails()
    started = NOW - dt.timedelta(hours=1)
    welcome.sending_at, welcome.channel, welcome.claim_token, welcome.claimed_until = (
        started, channel, "dead run", started + delivery.LEASE)
    db.session.commit()
    return welcome


def test_a_milestone_interrupted_while_tagging_is_tagged_again_and_never_sent_over_smtp_as_well(
        database_url, smtp_server, convertkit):
    app = app_with(database_url, **mail_config(smtp_server.port, CONVERTKIT_API_SECRET=SECRET,
                                               CONVERTKIT_BASE_URL=convertkit.url, CONVERTKIT_TIMEOUT_SECONDS=0.3))
    try:
        with app.app_context():
            customer = add()
            welcome = interrupted("convertkit")
            convertkit.mode = "fail"
            # The subscriber may have the tag already: an SMTP copy would be a second, different email.
            assert delivery.deliver_due(NOW)["retried"] == 1
            db.session.expire_all()
            email = db.session.get(EN, welcome.id)
            assert (email.status, email.channel, email.sending_at) == ("queued", "convertkit", None)
            assert "not sent over SMTP, as the subscriber may have the tag already" in email.last_error
            assert delivery.deliver_due(NOW + dt.timedelta(minutes=1))["retried"] == 1  # still not over SMTP
            convertkit.mode = "ok"
            assert delivery.deliver_due(NOW + dt.timedelta(minutes=3))["sent"] == 1
            assert smtp_server.messages == [] and convertkit.tagged() == [("milestone_welcome", "ada@example.com")]
            db.session.expire_all()
            assert db.session.get(EN, welcome.id).channel == "convertkit"
            assert db.session.get(Customer, customer.id).onboarding.welcome_email_sent is True
    finally:
        dispose(app)


def test_a_milestone_interrupted_while_going_over_smtp_goes_over_smtp_again_under_its_message_id(
        database_url, smtp_server, convertkit):
    from portal.emails import message

    app = app_with(database_url, **mail_config(smtp_server.port, CONVERTKIT_API_SECRET=SECRET,
                                               CONVERTKIT_BASE_URL=convertkit.url))
    try:
        with app.app_context():
            add()
            welcome = interrupted("smtp")
            assert delivery.deliver_due(NOW)["sent"] == 1
            assert convertkit.calls == []  # a tag now would be a second email
            [(_, sent)] = smtp_server.messages
            derived = message.message_id(welcome.id, welcome.dedupe_key, welcome.queued_at, "portal.test")
            assert sent["Message-ID"] == f"<{derived}>"
            db.session.expire_all()
            email = db.session.get(EN, welcome.id)
            assert (email.status, email.channel) == ("sent", "smtp")
            assert email.last_error == "an earlier run stopped while handing this email over; sent again"
    finally:
        dispose(app)


def test_messages_are_the_bytes_the_classic_policy_writes(ctx):
    import re
    from email.policy import compat32

    from portal.emails import message, render

    customer = add(organization="Ünïcode Labs – a name long enough to need folding in a subject line, surely")
    add("bob@example.com", "bob-co", "Bob Co")
    service.set_step(customer, "account_created", True, "test")
    db.session.commit()
    classic = compat32.clone(linesep="\r\n")
    unstable = re.compile(rb"=_[0-9a-f]{32}|Date: [^\r]*")  # each build's own boundary, and the clock
    rows = emails()
    assert len(rows) == 3
    for row in rows:
        rendered = render.render(row, db.session.get(Customer, row.customer_id))
        args = ("Customer success <cs@example.com>", row.recipient, f"{rendered.subject} – {customer.organization}",
                rendered.text, rendered.html, "0123abcd@portal.test", rendered.headers)
        assert unstable.sub(b"", message.build(*args)) == unstable.sub(b"", message.build(*args, policy=classic))
