"""Parsing and checking of values typed by people or read from files; pure, no Flask."""
from __future__ import annotations

import datetime as dt
import functools
import re

from email_validator import EmailNotValidError, validate_email

GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
WHOLE_NUMBER = re.compile(r"^\s*[+-]?[0-9]+\s*$")
# The largest value of an INTEGER column on PostgreSQL (SQLite's are wider): a larger number in a query would fail.
LARGEST_KEY = 2**31 - 1
MAX_TEAM_SIZE = 1_000_000  # people in one customer's team: any more is a typing slip
# The plausible days of things that happened (a signup, a day's engagement, a completed onboarding). The product
# is far younger than 2000, which still leaves room for records carried over from older tools, and refuses the
# 1900-01-01 a spreadsheet or database writes for "no date". Tomorrow, not today: a day in a time zone ahead
# of the portal's may already have begun.
EARLIEST_DATE = dt.date(2000, 1, 1)
DAYS_AHEAD = 1
DUE_YEARS_AHEAD = 5  # how far ahead a task may be due


class ValidationError(ValueError):
    """A value a person or a file gave that the portal cannot accept; the message says why."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def email(value: str, field: str = "email") -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValidationError(f"invalid email {value!r}: {error}", field) from None


def text(value: str, field: str, max_length: int, required: bool = False) -> str:
    value = value.strip()
    if "\x00" in value:  # PostgreSQL cannot store it
        raise ValidationError(f"{field} holds a NUL character", field)
    if required and not value:
        raise ValidationError(f"{field} is required", field)
    if len(value) > max_length:
        raise ValidationError(f"{field} is longer than {max_length} characters", field)
    return value


def github_login(value: str, field: str = "github_username") -> str:
    value = value.strip()
    if not GITHUB_LOGIN.match(value):
        raise ValidationError(
            f"invalid GitHub login {value!r}: 1-39 letters, digits or hyphens, not starting with a hyphen", field
        )
    return value


def integer(value: str | int, field: str, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from minimum to maximum (by default the largest an INTEGER column holds), checked before int()
    or the database see it: int() refuses more than 4,300 digits, PostgreSQL a number past its column's range."""
    maximum = LARGEST_KEY if maximum is None else maximum
    if isinstance(value, str):
        if not WHOLE_NUMBER.match(value):
            raise ValidationError(f"{field} must be a whole number, not {value[:40]!r}", field)
        if len(value.strip().lstrip("+-").lstrip("0")) > digits(max(maximum, -minimum)):
            raise ValidationError(f"{field} must be from {minimum:,} to {maximum:,}", field)
        value = int(value)
    if value < minimum:
        raise ValidationError(f"{field} must be at least {minimum}, not {value}", field)
    if value > maximum:
        raise ValidationError(f"{field} must be at most {maximum:,}", field)
    return value


def boolean(value: str, field: str) -> bool:
    cleaned = value.strip().lower()
    if cleaned == "true":
        return True
    if cleaned == "false":
        return False
    raise ValidationError(f"{field} must be true or false, not {value!r}", field)


def iso_date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{field} must be a date as YYYY-MM-DD, not {value!r}", field) from None


def within(day: dt.date, field: str, earliest: dt.date, latest: dt.date) -> dt.date:
    if not earliest <= day <= latest:
        raise ValidationError(f"{field} must be from {earliest} to {latest}, not {day}", field)
    return day


def recorded_date(value: str | dt.date, field: str, today: dt.date) -> dt.date:
    """The day something happened, as text (YYYY-MM-DD) or a date: from EARLIEST_DATE to tomorrow."""
    day = iso_date(value, field) if isinstance(value, str) else value
    return within(day, field, EARLIEST_DATE, today + dt.timedelta(days=DAYS_AHEAD))


def due_date(value: str | dt.date, field: str, today: dt.date) -> dt.date:
    """The day a task is due: from EARLIEST_DATE (an overdue task can be written down) to DUE_YEARS_AHEAD ahead."""
    day = iso_date(value, field) if isinstance(value, str) else value
    return within(day, field, EARLIEST_DATE, today + dt.timedelta(days=365 * DUE_YEARS_AHEAD))


def choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    cleaned = value.strip().lower()
    if cleaned not in allowed:
        raise ValidationError(f"{field} must be one of {', '.join(allowed)}, not {value!r}", field)
    return cleaned


def whole_number(text: str | None, last: int) -> int | None:
    """A number from 1 to `last` written in ASCII digits, or None: checked before int() is asked, which takes any
    Unicode digit ("²" passes isdigit() but not int()) and refuses more than 4,300 digits."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > digits(last):
        return None
    number = int(text)
    return number if 0 < number <= last else None


@functools.cache
def digits(number: int) -> int:
    """How many digits the number has: asked for the same few bounds on every id an import reads."""
    return len(str(number))


def database_key(text: str | None) -> int | None:
    """A row's integer key from text a user or a URL gave, or None when it cannot be one: a lookup then finds
    nothing rather than failing on a number the database cannot hold."""
    return whole_number(text, LARGEST_KEY)


def page_number(text: str | None, last: int = 100_000) -> int:
    """A page number from a query string: 1 for anything that is not one."""
    return whole_number(text, last - 1) or 1
