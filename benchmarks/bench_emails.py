"""(e) Email delivery: `portal.emails.delivery.deliver_due()` sending 1,000 queued emails over SMTP.

Seeds 1,000 customers with two weeks of engagement and queues their weekly summaries: each email is
rendered from templates (text and HTML parts, an unsubscribe link, a List-Unsubscribe header) and
its outcome recorded in the outbox. The SMTP server is aiosmtpd on a local port in its own process
(as a relay would be), counting what it accepts.

The baseline is a bare smtplib loop over one connection sending the very same messages: for each,
it builds the message from the subject, text and HTML the portal rendered (standard library email.mime,
quoted-printable parts, as the portal sends them) and sends it. A second figure sends
the messages' bytes prepared beforehand: the pure SMTP cost. Goal: the portal at least 0.5x the
bare loop's emails per second.
"""
from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
from email.charset import QP, Charset
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formatdate
from pathlib import Path

from sqlalchemy import select, update

from portal import create_app
from portal.emails import campaigns, delivery
from portal.extensions import db
from portal.models import Customer, EmailNotification

import common

GOAL = 0.5
SENDER = "cs@example.com"
CRLF = compat32.clone(linesep="\r\n")  # SMTP's line ends


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(port: int) -> None:
    """The SMTP server process: counts messages until its stdin closes, then prints the count."""
    import threading

    from aiosmtpd.controller import Controller

    class Counter:
        count = 0
        lock = threading.Lock()

        async def handle_DATA(self, server, session, envelope):
            with self.lock:
                Counter.count += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    print(Counter.count, flush=True)


class SmtpProcess:
    def __enter__(self) -> SmtpProcess:
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, str(Path(__file__)), "serve", str(self.port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP server process did not start")
        return self

    def __exit__(self, *exc) -> None:
        out, _ = self.process.communicate("", timeout=60)
        self.received = int(out.strip() or 0)


def mail_app(url: str, port: int):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SCHEDULER_ENABLED": False, "SECRET_KEY": "benchmark",
                       "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_SUPPRESS_SEND": False,
                       "MAIL_DEFAULT_SENDER": SENDER, "PORTAL_BASE_URL": "https://portal.example"})


def requeue() -> None:
    db.session.execute(update(EmailNotification).values(status="queued", attempts=0, sent_at=None,
                                                        provider_message_id=None, channel=None))
    db.session.commit()


def deliver_all(expected: int) -> None:
    counts = delivery.deliver_due()
    if counts["sent"] != expected:
        raise RuntimeError(f"expected {expected} emails sent, got {counts}")


def build(recipient: str, subject: str, text: str, html: str, message_id: str) -> bytes:
    """The message as the portal sends it (multipart/alternative, quoted-printable UTF-8 parts), with the
    standard library's email.mime classes and classic policy: the cheapest way the library offers."""
    charset = Charset("utf-8")
    charset.body_encoding = QP
    message, alternative = MIMEMultipart(), MIMEMultipart("alternative")
    alternative.attach(MIMEText(text, "plain", charset))
    alternative.attach(MIMEText(html, "html", charset))
    message.attach(alternative)
    message["Subject"], message["From"], message["To"] = subject, SENDER, recipient
    message["Date"], message["Message-ID"] = formatdate(localtime=True), f"<{message_id}>"
    message["List-Unsubscribe"] = "<https://portal.example/unsubscribe/token>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message.as_bytes(policy=CRLF)


def sent_messages() -> list[tuple]:
    rows = db.session.execute(select(EmailNotification.recipient, EmailNotification.subject,
                                     EmailNotification.body_text, EmailNotification.body_html,
                                     EmailNotification.provider_message_id).order_by(EmailNotification.id))
    return [tuple(row) for row in rows]


def bare_loop(port: int, messages: list[tuple], prepared: bool) -> None:
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for message in messages:
            data = message[1] if prepared else build(*message)
            connection.sendmail(SENDER, [message[0]], data)


def run(url: str, customers: int, repeat: int) -> None:
    print(f"\n(e) email delivery: {customers:,} weekly summaries over SMTP (aiosmtpd in another process)")
    common.fresh_database(url)
    common.seed(url, customers, days=14)
    with SmtpProcess() as server:
        app = mail_app(url, server.port)
        with app.app_context():
            # The seed spreads customers over statuses as a real book is; only active ones get a summary.
            db.session.execute(update(Customer).values(status="active"))
            db.session.commit()
            queued = campaigns.queue_weekly_summaries(common.utc_today())
            if queued != customers:
                raise RuntimeError(f"expected {customers} weekly summaries queued, got {queued}")
            portal = common.best_of(repeat, lambda: deliver_all(customers), requeue)
            messages = sent_messages()
            baseline = common.best_of(repeat, lambda: bare_loop(server.port, messages, prepared=False))
            prepared = [(message[0], build(*message)) for message in messages]
            floor = common.best_of(repeat, lambda: bare_loop(server.port, prepared, prepared=True))
            db.engine.dispose()
    if server.received != customers * repeat * 3:
        raise RuntimeError(f"the server accepted {server.received} messages, expected {customers * repeat * 3}")
    rates = {name: customers / seconds for name, seconds in (("portal", portal), ("bare", baseline), ("floor", floor))}
    ratio = rates["portal"] / rates["bare"]
    print(f"  {'deliver_due(), emails per second':<48} {rates['portal']:7.0f}   ({portal:.3f} s)")
    print(f"  {'bare smtplib loop building each message':<48} {rates['bare']:7.0f}   ({baseline:.3f} s)")
    print(f"  {'bare smtplib loop, bytes prepared (SMTP only)':<48} {rates['floor']:7.0f}   ({floor:.3f} s)")
    print(f"  ratio {ratio:.2f}x (goal at least {GOAL:g}x): {'within goal' if ratio >= GOAL else 'UNDER GOAL'}"
          f"; {rates['portal'] / rates['floor']:.2f}x of SMTP alone")


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(int(sys.argv[2]))
