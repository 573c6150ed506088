"""The two ways out for one delivery run: ConvertKit tags and one reused SMTP connection (Flask-Mail)."""
from __future__ import annotations

import smtplib
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from flask_mail import sanitize_address

from ..extensions import mail
from . import message
from .convertkit import ConvertKit, ConvertKitError
from .render import Rendered

SMTP_ERRORS = (OSError, smtplib.SMTPException)


@dataclass(frozen=True)
class Outgoing:
    sender: str
    recipient: str
    data: bytes
    message_id: str  # without its angle brackets: the outbox's provider_message_id


class SendFailed(Exception):
    """This attempt failed; the message says why (and never carries a secret). permanent: trying again cannot help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


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
        self.smtp_down: str | None = None

    def __enter__(self) -> Channels:
        return self

    def __exit__(self, *exc) -> None:
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

    def prepare(self, recipient: str, rendered: Rendered, message_id: str) -> Outgoing:
        self.check_smtp()  # no need to build what cannot be sent
        try:
            data = message.build(self.sender, recipient, rendered.subject, rendered.text, rendered.html, message_id,
                                 rendered.headers)
            return Outgoing(sanitize_address(self.sender), sanitize_address(recipient), data, message_id)
        except (ValueError, UnicodeError) as error:
            raise SendFailed(f"the message cannot be built: {error}") from None

    def send(self, outgoing: Outgoing) -> None:
        """Over the run's one SMTP connection (Flask-Mail's); a broken connection is dropped, the next email opens another."""
        connection = self.smtp()
        if connection.host is None:  # Flask-Mail's MAIL_SUPPRESS_SEND: accepted without sending
            return
        try:
            connection.host.sendmail(outgoing.sender, [outgoing.recipient], outgoing.data)
        except (*SMTP_ERRORS, UnicodeError) as error:  # UnicodeError: an address the server cannot take
            if isinstance(error, smtplib.SMTPServerDisconnected) or not isinstance(error, smtplib.SMTPException):
                self.drop_connection()
            raise SendFailed(f"SMTP: {describe(error)}", permanent=refused_for_good(error)) from None

    def drop_connection(self) -> None:
        """A broken connection is closed and the next email opens a new one."""
        self.stack.pop_all()
        if self.connection is not None and self.connection.host is not None:
            try:
                self.connection.host.close()
            except SMTP_ERRORS:
                pass
        self.connection = None


def refused_for_good(error: BaseException) -> bool:
    """A 5xx answer to the recipient or to the message itself: this email will never be taken, and retrying only
    delays saying so. A 5xx to our sender says the relay's settings are wrong for every email: that is retried."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500


def describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        return f"{error.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + "; ".join(f"{code} {text.decode(errors='replace')}"
                                                  for code, text in error.recipients.values())
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
