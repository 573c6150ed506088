"""The two ways out for one delivery run: ConvertKit tags and one reused SMTP connection (Flask-Mail)."""
from __future__ import annotations

import smtplib
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

from email.charset import QP, Charset
from email.policy import compat32
from email.mime.text import MIMEText

from flask import current_app
from flask_mail import Message, sanitize_address

from ..extensions import mail
from .convertkit import ConvertKit, ConvertKitError
from .render import Rendered

SMTP_ERRORS = (OSError, smtplib.SMTPException)
CRLF_COMPAT32 = compat32.clone(linesep="\r\n")


class WrappedMessage(Message):
    """Parts in quoted-printable: Flask-Mail sends UTF-8 as unwrapped 8bit, and SMTP servers refuse lines
    over 998 characters (a row of links in the HTML part is one)."""

    def _mimetext(self, text, subtype="plain"):
        charset = Charset("utf-8")
        charset.body_encoding = QP
        return MIMEText(text, _subtype=subtype, _charset=charset)

    def as_bytes(self) -> bytes:
        # The classic policy serialises four times faster than Flask-Mail's policy.SMTP, with the same
        # result for these headers (the subject is already encoded by Flask-Mail when it is not ASCII).
        message = self._message()
        for part in message.walk():
            if part.is_multipart():
                # A random boundary of our own: the generator would otherwise compile a regex per message
                # to check that its boundary is not in the text.
                part.set_boundary(f"=_{uuid.uuid4().hex}")
        return message.as_bytes(policy=CRLF_COMPAT32)


@dataclass(frozen=True)
class Outgoing:
    sender: str
    recipient: str
    data: bytes
    message_id: str  # without its angle brackets: the outbox's provider_message_id


class SendFailed(Exception):
    """This attempt failed; the message says why (and never carries a secret)."""


class Channels:
    """Opened lazily and at most once per run: a ConvertKit or SMTP outage costs one try, not one per email."""

    def __init__(self):
        config = current_app.config
        self.smtp_configured = bool(config.get("MAIL_SERVER"))
        secret = config.get("CONVERTKIT_API_SECRET")
        self.convertkit = ConvertKit(config["CONVERTKIT_BASE_URL"], secret,
                                     config["CONVERTKIT_TIMEOUT_SECONDS"]) if secret else None
        self.convertkit_down: str | None = None
        self.sender = config.get("MAIL_DEFAULT_SENDER") or f"customer-success@{self.domain()}"
        self.stack = ExitStack()
        self.connection = None
        self.pool: ThreadPoolExecutor | None = None
        self.smtp_down: str | None = None

    def __enter__(self) -> Channels:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        try:
            self.stack.close()
        except SMTP_ERRORS:
            pass  # QUIT failed: every message was already accepted or recorded as failed

    @staticmethod
    def domain() -> str:
        return urlsplit(current_app.config["PORTAL_BASE_URL"]).hostname or "localhost"

    def tag(self, milestone: str, email: str) -> str:
        if self.convertkit is None:
            raise SendFailed("ConvertKit is not configured")
        if self.convertkit_down:
            raise SendFailed(f"ConvertKit: {self.convertkit_down} (earlier in this run)")
        try:
            return self.convertkit.tag_subscriber(f"milestone_{milestone}", email)
        except ConvertKitError as error:
            self.convertkit_down = str(error)
            raise SendFailed(f"ConvertKit: {error}") from None

    def check_smtp(self) -> None:
        if not self.smtp_configured:
            raise SendFailed("SMTP is not configured (MAIL_SERVER)")
        if self.smtp_down:
            raise SendFailed(f"SMTP: {self.smtp_down} (earlier in this run)")

    def smtp(self):
        self.check_smtp()
        if self.connection is None:
            try:
                self.connection = self.stack.enter_context(mail.connect())
            except SMTP_ERRORS as error:
                self.smtp_down = describe(error)
                raise SendFailed(f"SMTP: {self.smtp_down}") from None
        return self.connection

    def prepare(self, recipient: str, rendered: Rendered) -> Outgoing:
        """The message's bytes: the CPU work, done while the previous email is on the wire."""
        self.check_smtp()
        message = WrappedMessage(rendered.subject, recipients=[recipient], body=rendered.text, html=rendered.html,
                                 sender=self.sender, extra_headers=rendered.headers)
        # No dots before the @: the provider's event ids are '<id>.<suffix>' and are matched by what precedes the dot.
        message.msgId = f"<{uuid.uuid4().hex}@{self.domain()}>"
        if message.has_bad_headers():
            raise SendFailed("a header holds a line break")
        try:
            return Outgoing(sanitize_address(self.sender), sanitize_address(recipient), message.as_bytes(),
                            message.msgId.strip("<>"))
        except (ValueError, UnicodeError) as error:
            raise SendFailed(f"the message cannot be built: {error}") from None

    def start(self, outgoing: Outgoing) -> Future:
        """Send over the run's one SMTP connection, in the sender thread; one email at a time is in flight."""
        connection = self.smtp()
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")
        if connection.host is None:  # Flask-Mail's MAIL_SUPPRESS_SEND: accepted without sending
            return self.pool.submit(lambda: None)
        return self.pool.submit(connection.host.sendmail, outgoing.sender, [outgoing.recipient], outgoing.data)

    def finish(self, future: Future) -> None:
        """Wait for the send; raises SendFailed, and drops a broken connection so the next email opens another."""
        try:
            future.result()
        except (*SMTP_ERRORS, UnicodeError) as error:  # UnicodeError: an address the server cannot take
            if isinstance(error, smtplib.SMTPServerDisconnected) or not isinstance(error, smtplib.SMTPException):
                self.drop_connection()
            raise SendFailed(f"SMTP: {describe(error)}") from None

    def drop_connection(self) -> None:
        """A broken connection is closed and the next email opens a new one."""
        self.stack.pop_all()
        if self.connection is not None and self.connection.host is not None:
            try:
                self.connection.host.close()
            except SMTP_ERRORS:
                pass
        self.connection = None


def describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        return f"{error.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + "; ".join(f"{code} {text.decode(errors='replace')}"
                                                  for code, text in error.recipients.values())
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
