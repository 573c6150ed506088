"""The email provider's signed event webhook (Twilio SendGrid): pure, no Flask.

Signature: ECDSA P-256 with SHA-256 over the timestamp header followed by the raw body; the
signature header is base64 DER and the public key (SENDGRID_WEBHOOK_PUBLIC_KEY) is base64 DER
SubjectPublicKeyInfo, exactly as the provider's settings page shows it.

Statuses only move forward: queued < sent < delivered < opened < clicked. bounced and dropped end
the story: they replace any other status and are never replaced. A spam report is recorded on the
event (outcome processed, with a note) but keeps the email's status: the email did arrive, and the
report means no further email should go to that address.
"""
from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..validation import ValidationError
from .payloads import loads

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TIMESTAMP = re.compile(r"[0-9]{1,12}")
MAX_EVENT_ID = 120  # events.delivery_id
MAX_EVENT_NAME = 80  # events.event_type
MAX_MESSAGE_ID = 200  # email_notifications.provider_message_id

STATUS_OF = {"delivered": "delivered", "open": "opened", "click": "clicked", "bounce": "bounced",
             "dropped": "dropped"}
NOTES = {
    "spamreport": "spam report: the recipient marked this email as spam; send them no further email",
    "processed": "recorded only: the provider accepted the email",
    "deferred": "recorded only: the provider will retry delivery",
}
FORWARD = ("queued", "failed", "sent", "delivered", "opened", "clicked")  # failed: our own give-up, not the provider's
RANK = {"queued": 0, "failed": 0, "sent": 1, "delivered": 2, "opened": 3, "clicked": 4}
FINAL = ("bounced", "dropped")

# cryptography (OpenSSL's bindings, 7 MB a process) is imported when a key is first read, not with the app: the
# command line never needs it.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec


@functools.lru_cache(maxsize=8)
def public_key(configured: str) -> ec.EllipticCurvePublicKey:
    """The configured key; ValueError when it is not base64 DER of a P-256 public key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    text = re.sub(r"-----[A-Z ]+-----|\s", "", configured)  # a pasted PEM works too
    try:
        key = load_der_public_key(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"not a base64 DER public key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(key: ec.EllipticCurvePublicKey, body: bytes, signature: str | None, timestamp: str | None) -> bool:
    """True only for a valid base64 DER signature of timestamp + body; anything missing fails."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature or not timestamp:
        return False
    try:
        decoded = base64.b64decode(signature.strip(), validate=True)
        key.verify(decoded, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature, UnicodeEncodeError):
        return False
    return True


def fresh(timestamp: str | None, now: float, max_age: int) -> bool:
    """An integer timestamp within max_age seconds of now (either way); max_age 0 accepts any integer."""
    if timestamp is None or not TIMESTAMP.fullmatch(timestamp.strip()):
        return False
    return max_age <= 0 or abs(now - int(timestamp)) <= max_age


def moves_to(new: str) -> tuple[str, ...]:
    """The statuses an email may be in for this new status to replace it."""
    if new in FINAL:
        return FORWARD
    return tuple(status for status in FORWARD if RANK[status] < RANK[new])


def advance(current: str, new: str | None) -> str:
    """The status after an event: forward only, bounced and dropped final."""
    return new if new is not None and current in moves_to(new) else current


def candidates(message_id: str | None) -> tuple[str, ...]:
    """sg_message_id is '<message id>.<filter suffix>': match the whole value and the part before the first '.'."""
    if not message_id:
        return ()
    head = message_id.split(".", 1)[0]
    return (message_id, head) if head and head != message_id else (message_id,)


@dataclass(frozen=True)
class EmailEvent:
    event_id: str
    event: str
    message_id: str | None
    payload: dict
    smtp_id: str | None = None  # the Message-ID header the portal set, as the provider echoes it

    def ids(self) -> tuple[str, ...]:
        """Every provider message id this event may be stored under: its sg_message_id (whole, and before the
        first '.'), then the Message-ID header without its angle brackets (what SMTP delivery records)."""
        found = candidates(self.message_id)
        header = (self.smtp_id or "").strip().strip("<>").strip()
        return found + (header,) if header and header not in found else found

    @property
    def status(self) -> str | None:
        return STATUS_OF.get(self.event)

    @property
    def note(self) -> str:
        return NOTES.get(self.event) or (f"status {self.status}" if self.status else "recorded only")


def _string(item: dict, field: str, index: int, max_length: int, required: bool = True) -> str | None:
    value = item.get(field)
    if value is None and not required:
        return None
    name = f"[{index}].{field}"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} is required and must be a non-empty string", name)
    if len(value) > max_length or "\x00" in value:
        raise ValidationError(f"{name} must be at most {max_length} characters, without NUL", name)
    return value.strip()


def parse(raw: bytes) -> list[EmailEvent]:
    """The events of a body: a JSON array of objects, each with sg_event_id and event."""
    payload = loads(raw)
    if not isinstance(payload, list):
        raise ValidationError("the body must be a JSON array of events", "body")
    events = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            raise ValidationError(f"event [{index}] must be a JSON object", f"[{index}]")
        events.append(EmailEvent(
            event_id=_string(item, "sg_event_id", index, MAX_EVENT_ID),
            event=_string(item, "event", index, MAX_EVENT_NAME),
            message_id=_string(item, "sg_message_id", index, MAX_MESSAGE_ID, required=False),
            payload=item,
            smtp_id=_string(item, "smtp-id", index, MAX_MESSAGE_ID + 2, required=False),
        ))
    return events
