"""Parsing of values people type and files carry."""
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


@pytest.mark.parametrize("text", ["Octo-Cat", "a", "a" * 39])
def test_github_login(text):
    assert validation.github_login(text) == text


@pytest.mark.parametrize("text", ["-octo", "octo cat", "a" * 40, "", "octo_cat"])
def test_github_login_refuses(text):
    with pytest.raises(ValidationError):
        validation.github_login(text)


def test_email_is_normalised_to_lower_case():
    assert validation.email(" Dev@Acme.Example ") == "dev@acme.example"
