"""Signed links that work without signing in: unsubscribe and NPS answers (itsdangerous, SECRET_KEY)."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

NPS_VALID = dt.timedelta(days=30)


class BadLink(Exception):
    """A link that was tampered with, has expired, or names nothing; the message is for the person."""


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def unsubscribe_token(customer_id: int) -> str:
    return _serializer("unsubscribe").dumps(customer_id)


def unsubscribe_customer_id(token: str) -> int:
    """Unsubscribe links never expire: a person may use one years later."""
    try:
        value = _serializer("unsubscribe").loads(token)
    except BadSignature:
        raise BadLink("This unsubscribe link is not valid.") from None
    if not isinstance(value, int):
        raise BadLink("This unsubscribe link is not valid.")
    return value


def nps_token(survey_id: int, score: int) -> str:
    return _serializer("nps").dumps([survey_id, score])


def nps_answer(token: str) -> tuple[int, int]:
    try:
        value = _serializer("nps").loads(token, max_age=int(NPS_VALID.total_seconds()))
    except SignatureExpired:
        raise BadLink("This survey link has expired: surveys can be answered for 30 days.") from None
    except BadSignature:
        raise BadLink("This survey link is not valid.") from None
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(item, int) for item in value)
            or not 0 <= value[1] <= 10):
        raise BadLink("This survey link is not valid.")
    return value[0], value[1]


def absolute_url(endpoint: str, _anchor: str | None = None, **values) -> str:
    """A link for an email: PORTAL_BASE_URL with the route's path, whether or not a request is running."""
    base = urlsplit(current_app.config["PORTAL_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "http")
    url = adapter.build(endpoint, values, force_external=True)
    return f"{url}#{_anchor}" if _anchor else url
