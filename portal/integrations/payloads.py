"""Reading untrusted JSON bodies: every problem becomes a ValidationError naming the field."""
from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import re
from typing import Any

from ..validation import DAYS_AHEAD, EARLIEST_DATE, ValidationError

MAX_ID_LENGTH = 120  # events.delivery_id


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: JSON, but no database column or JSON writer takes infinity
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


# \u0000 as an escape of its own: after an even number of backslashes (an odd one makes it the text "\u0000").
NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def loads(raw: bytes) -> Any:
    """The JSON value of a raw body, NaN, Infinity and numbers out of range refused; a ValidationError naming the
    body otherwise."""
    try:
        return json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
    except (ValueError, RecursionError) as error:
        raise ValidationError(f"the body is not valid JSON: {str(error)[:200]}", "body") from None


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character is ("[0].sg_message_id", "issue.title"; "" for the value itself), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path or ""
            found = nul_path(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def parse_json(raw: bytes) -> dict:
    """A JSON object from the raw body (see loads), with no NUL character in any of its strings: no text column of
    PostgreSQL can store one, and the fields it could hide in (an action, a login, a label) are compared and stored
    as text. (The email provider's events are read with loads() and check the fields they use one by one.)"""
    payload = loads(raw)
    if not isinstance(payload, dict):
        raise ValidationError("the body must be a JSON object", "body")
    # The raw text says whether to look (a body in UTF-16 or UTF-32 has NUL bytes in its encoding): most have none.
    if (b"\\u0000" in raw and NUL_ESCAPE.search(raw)) or b"\x00" in raw:
        try:
            where = nul_path(payload)
        except RecursionError:  # nested as deep as loads() allows: not a body any page would show
            where = ""
        if where is not None:
            raise ValidationError(f"{where or 'the body'} holds a NUL character (\\u0000), which no text field can "
                                  "store", where or "body")
    return payload


# \uD800-\uDFFF: half of a surrogate pair, perhaps without its other half.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def stored_text(payload: Any, raw: bytes | None = None) -> str:
    """The JSON text the events table stores for a payload, made once per event: the body as received, `raw`, when
    it is UTF-8 without escaped surrogates (loads() read it, so it is JSON any database takes), else the payload
    written out. Lone surrogates (\\ud800), which json.loads accepts but no page can show, and nesting too deep to
    write out are the body's ValidationError, so they answer 400 and store nothing."""
    if raw is not None and not raw.startswith(codecs.BOM_UTF8) and b"\x00" not in raw and not SURROGATE_ESCAPE.search(raw):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass  # json.loads took it as UTF-16 or UTF-32
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
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
    """An aware UTC time from ISO 8601 text (naive means UTC) or from epoch seconds, within the days things can
    have happened on: from EARLIEST_DATE to a day ahead of now. Counts go to the payload's own day, and a customer
    signs up on it: a sender's 1900-01-01 or year 2283 would write history no report expects."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            moment = dt.datetime.fromtimestamp(value, dt.timezone.utc)
        elif isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.strip())
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
            moment = moment.astimezone(dt.timezone.utc)
        else:
            moment = None
    except (ValueError, OverflowError, OSError):
        moment = None
    if moment is None:
        raise ValidationError(f"{field} must be an ISO 8601 time, not {str(value)[:60]!r}", field)
    latest = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=DAYS_AHEAD)
    if not EARLIEST_DATE <= moment.date() or moment > latest:
        raise ValidationError(f"{field} must be from {EARLIEST_DATE} to {latest:%Y-%m-%d}, not {moment:%Y-%m-%d}",
                              field)
    return moment
