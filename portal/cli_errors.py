"""The one way `customer-tracking` commands give up: nothing kept, one line on stderr, a non-zero exit."""
from __future__ import annotations

from typing import NoReturn

import click

from .extensions import db


def fail(message: str) -> NoReturn:
    db.session.rollback()
    raise click.ClickException(message)
