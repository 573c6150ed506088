"""Calendar days in the portal's time zone (setting PORTAL_TIMEZONE, default UTC)."""
import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("PORTAL_TIMEZONE") or "UTC")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def today() -> dt.date:
    return local_date(now())


def local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(zone()).date()
