"""An email's bytes from its rendered parts: pure, the standard library and Flask-Mail's address helper.

Parts are quoted-printable UTF-8: SMTP servers refuse lines over 998 characters (a row of links in an
HTML part is one) and not every relay takes 8bit. The classic policy serialises about four times faster
than policy.SMTP, and a boundary of our own spares the generator a regex per message; "=_" cannot occur
in quoted-printable text, so the boundary never clashes with a part.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formatdate
from typing import Mapping

from flask_mail import sanitize_address


class ClassicCRLF(Compat32):
    """The classic policy with SMTP's line ends, writing a header that fits on its line as it is: compat32 runs
    every header through email.header.Header to fold it, a third of the time a message took to build, and
    folding leaves such a line unchanged (a test checks the bytes are compat32's own)."""

    def fold_binary(self, name: str, value) -> bytes:
        if (isinstance(value, str) and value.isascii() and len(name) + len(value) + 2 <= self.max_line_length
                and "\r" not in value and "\n" not in value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


CRLF = ClassicCRLF(linesep="\r\n")


def _charset() -> Charset:
    charset = Charset("utf-8")
    charset.body_encoding = QP
    return charset


def header_text(value: str) -> str | Header:
    if "\r" in value or "\n" in value:
        raise ValueError("a header holds a line break")
    return value if value.isascii() else Header(value, "utf-8")


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def message_id(row_id: int, dedupe_key: str, queued_at: dt.datetime, domain: str) -> str:
    """The Message-ID (without its angle brackets) of the outbox row's every attempt, derived from the row.

    Derived rather than drawn at random and stored: an attempt whose acceptance the database did not record
    (the run died, or the database lost its last sending marks) is sent again under the same id however it
    came about, so receivers can drop the copy. The row's id, dedupe key and queueing time to the microsecond
    name one email of one database; a database restored from a backup derives the same ids for the same
    emails, which then are the same emails. A re-send asked for on the email log keeps it too: every earlier
    attempt failed, or one got through unrecorded. Hex digits only: the provider's event ids are '<id>.<suffix>'.
    """
    queued = (queued_at - EPOCH) // dt.timedelta(microseconds=1)
    digest = hashlib.sha256(f"{row_id}\n{dedupe_key}\n{queued}".encode()).hexdigest()[:32]
    return f"{digest}@{domain}"


def build(sender: str, recipient: str, subject: str, text: str, html: str, message_id: str,
          headers: Mapping[str, str], policy: Compat32 = CRLF) -> bytes:
    """multipart/alternative with a text and an HTML part; message_id without its angle brackets."""
    message = MIMEMultipart("alternative", boundary=f"=_{uuid.uuid4().hex}")
    message.attach(MIMEText(text, "plain", _charset()))
    message.attach(MIMEText(html, "html", _charset()))
    message["Subject"] = header_text(subject)
    message["From"] = sanitize_address(header_text(sender))
    message["To"] = sanitize_address(header_text(recipient))
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{message_id}>"
    for name, value in headers.items():
        message[name] = header_text(value)
    return message.as_bytes(policy=policy)
