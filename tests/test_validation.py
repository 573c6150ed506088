"""Parsing of values people type and files carry."""
import datetime as dt

import pytest

from portal import validation
from portal.validation import ValidationError


@pytest.mark.parametrize("text, number", [("3", 3), (None, 1), ("", 1), ("0", 1), ("-2", 1), ("x", 1), ("²", 1),
                                          ("99999", 99999), ("100000", 1)])
def test_page_number(text, number):
    assert validation.page_number(text) == number


@pytest.mark.parametrize("text, value", [("7", 7), (" 7 ", 7), ("+7", 7), ("0", 0)])
def test_integer(text, value):
    assert validation.integer(text, "count") == value


@pytest.mark.parametrize("text", ["-1", "1.5", "", "seven", "²", "1_000"])
def test_integer_refuses(text):
    with pytest.raises(ValidationError):
        validation.integer(text, "count")


@pytest.mark.parametrize("text, message", [
    ("2147483647", None), ("002147483647", None), ("2147483648", "at most 2,147,483,647"),
    ("9" * 5000, "from 0 to 2,147,483,647"), ("-" + "9" * 5000, "from 0 to 2,147,483,647"),
])
def test_integer_stays_within_an_integer_column(text, message):
    if message is None:
        assert validation.integer(text, "count") == 2**31 - 1
        return
    with pytest.raises(ValidationError, match=message):
        validation.integer(text, "count")
    with pytest.raises(ValidationError, match="at most"):
        validation.integer(2**31, "count")


TODAY = dt.date(2026, 12, 6)


@pytest.mark.parametrize("value, accepted", [
    ("2000-01-01", True), (dt.date(2000, 1, 1), True), ("2026-12-07", True), (" 2026-12-06 ", True),
    ("1999-12-31", False), ("1900-01-01", False), ("2026-12-08", False), ("2283-01-01", False),
    (dt.date(1900, 1, 1), False),
])
def test_recorded_dates_fall_between_2000_and_tomorrow(value, accepted):
    if accepted:
        assert validation.recorded_date(value, "date", TODAY) == dt.date.fromisoformat(str(value).strip())
        return
    with pytest.raises(ValidationError, match=r"^date must be from 2000-01-01 to 2026-12-07, not \d{4}"):
        validation.recorded_date(value, "date", TODAY)


def test_a_task_may_be_due_five_years_ahead_not_more():
    assert validation.due_date("2031-12-05", "due", TODAY) == dt.date(2031, 12, 5)
    assert validation.due_date("2020-01-01", "due", TODAY) == dt.date(2020, 1, 1)  # overdue, written down late
    for text in ("2031-12-06", "1900-01-01"):
        with pytest.raises(ValidationError, match="due must be from 2000-01-01 to 2031-12-05"):
            validation.due_date(text, "due", TODAY)


@pytest.mark.parametrize("text", ["Octo-Cat", "a", "a" * 39])
def test_github_login(text):
    assert validation.github_login(text) == text


@pytest.mark.parametrize("text", ["-octo", "octo cat", "a" * 40, "", "octo_cat"])
def test_github_login_refuses(text):
    with pytest.raises(ValidationError):
        validation.github_login(text)


def test_email_is_normalised_to_lower_case():
    assert validation.email(" Dev@Acme.Example ") == "dev@acme.example"
