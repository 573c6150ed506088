"""Reading untrusted JSON bodies: every problem becomes a ValidationError naming the field."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..validation import ValidationError

MAX_ID_LENGTH = 120  # events.delivery_id


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes) -> Any:
    """The JSON value of a raw body, NaN and Infinity refused; a ValidationError naming the body otherwise."""
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise ValidationError(f"the body is not valid JSON: {str(error)[:200]}", "body") from None


def parse_json(raw: bytes) -> dict:
    """A JSON object from the raw body (see loads)."""
    payload = loads(raw)
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object", "body")
    return payload


def stored_text(payload: Any) -> str:
    """The JSON text of a payload as the events table stores it, made once per event. Lone surrogates (\\ud800),
    which json.loads accepts but no database can store, and nesting too deep to write out are the body's
    ValidationError, so they answer 400 and store nothing."""
    try:
        text = json.dumps(payload, ensure_ascii=False)
        text.encode("utf-8")
    except (ValueError, RecursionError) as error:
        raise ValidationError(f"the body is not valid JSON: {str(error)[:200]}", "body") from None
    return text


def dig(payload: Any, *path: str) -> Any:
    """The value at the path, or None where any step is missing or not an object."""
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def text(value: Any, field: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} is required and must be a non-empty string", field)
    if "\x00" in value:
        raise ValidationError(f"{field} must not contain NUL characters", field)
    return value.strip()


def identifier(value: Any, field: str) -> str:
    """An idempotency key or event type: printable, at most 120 characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} is required", field)
    value = value.strip()
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise ValidationError(f"{field} must be at most {MAX_ID_LENGTH} printable characters", field)
    return value


def timestamp(value: Any, field: str) -> dt.datetime:
    """An aware UTC time from ISO 8601 text (naive means UTC) or from epoch seconds."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.timezone.utc)
        if isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.strip())
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
            moment = moment.astimezone(dt.timezone.utc)
        else:
            moment = None
    except (ValueError, OverflowError, OSError):
        moment = None
    # Far-off years would overflow when shifted to the portal's time zone.
    if moment is not None and 1970 <= moment.year <= 9998:
        return moment
    raise ValidationError(f"{field} must be an ISO 8601 time, not {str(value)[:60]!r}", field)
