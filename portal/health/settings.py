"""Portal settings outside the health formula: GitHub trigger label, PR branch prefix, re-engagement days,
the risk signals' thresholds, the playbooks' daily cap of tasks per owner, the erasure of churned customers.

The health formula's weights, bands and window are versioned separately (snapshots.current_settings).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Row, func, select, true

from .. import audit, validation
from ..extensions import db
from ..models import AppSetting, HealthSettings
from . import metrics, snapshots


def percent(text: str, field: str) -> int:
    return validation.integer(text, field, minimum=1, maximum=100)


def days(field: str, minimum: int = 1) -> Callable[[str], int]:
    """A number of days: up to ten years, so that dates worked out from it stay dates."""
    return lambda text: validation.integer(text, field, minimum=minimum, maximum=3650)


# key: (default, parser from text)
SETTINGS: dict[str, tuple[Any, Callable[[str], Any]]] = {
    "trigger_label": ("rsolv", lambda text: validation.text(text, "trigger_label", 50, required=True)),
    "pr_branch_prefix": ("rsolv/", lambda text: validation.text(text, "pr_branch_prefix", 100, required=True)),
    "reengagement_days": (7, days("reengagement_days")),
    "risk_inactive_days": (14, days("risk_inactive_days")),
    "risk_rejection_percent": (50, lambda text: percent(text, "risk_rejection_percent")),
    "risk_blocker_days": (7, days("risk_blocker_days")),
    "playbook_daily_cap": (10, lambda text: validation.integer(text, "playbook_daily_cap", minimum=1, maximum=100_000)),
    # Days after churning that a customer's personal data is erased by the daily erase_churned job; 0 is never.
    "erase_churned_after_days": (0, days("erase_churned_after_days", minimum=0)),
}


STORED = select(AppSetting.__table__.c.key, AppSetting.__table__.c.value)  # plain rows: every webhook reads them


def current() -> dict[str, Any]:
    return parsed(dict(db.session.execute(STORED).all()))


def parsed(stored: dict[str, str]) -> dict[str, Any]:
    return {key: parse(stored[key]) if key in stored else default for key, (default, parse) in SETTINGS.items()}


@dataclass(frozen=True)
class Current:
    """current() and the newest health settings (a row of their version and weights, or the HealthSettings just
    created), with their fingerprint: it changes whenever any of them does."""

    portal: dict[str, Any]
    health: Row | HealthSettings
    fingerprint: tuple


def fingerprint_columns() -> list:
    """Columns that a statement can return (as scalar subqueries) to give the settings' fingerprint as they are now:
    when the newest health settings were created (every version is a new row) and the last change to the stored
    settings. Times rather than the version number, so that a database emptied and filled again does not pass for
    the one a process remembers."""
    versions, stored = HealthSettings.__table__, AppSetting.__table__
    return [select(func.max(versions.c.created_at)).scalar_subquery().label("health_created"),
            select(func.max(stored.c.updated_at)).scalar_subquery().label("settings_changed")]


def fingerprint_of(row: Row) -> tuple:
    """The fingerprint in a row that has the fingerprint_columns()."""
    return row.health_created, row.settings_changed


def _with_health():
    """The newest health settings' version and weights next to each stored setting's key and value (one row, key
    NULL, when none is stored), each row with the settings' fingerprint as fingerprint_columns() gives it."""
    versions, stored = HealthSettings.__table__, AppSetting.__table__
    columns = [versions.c.version, *(versions.c[name] for name in metrics.Weights.__dataclass_fields__)]
    # max() rather than ORDER BY ... LIMIT :n: with no parameter, PostgreSQL plans the prepared statement once.
    newest = select(*columns).where(versions.c.version == select(func.max(versions.c.version)).scalar_subquery())
    newest = newest.subquery()
    return (select(newest, stored.c.key, stored.c.value, *fingerprint_columns())
            .select_from(newest.outerjoin(stored, true())))


WITH_HEALTH = _with_health()


# The last settings read, per database: a webhook delivery starts from them and its insert returns the
# fingerprint_columns(), so they are read again only after a change (integrations.service.receive_github).
_remembered: dict[str, Current] = {}


def read() -> Current:
    """The settings in one statement, remembered for remembered()."""
    rows = db.session.execute(WITH_HEALTH).all()
    if not rows:  # no health settings yet: the first use creates them; the empty fingerprint matches nothing
        return Current(current(), snapshots.current_settings(), ())
    newest = rows[0]
    read_now = Current(parsed({row.key: row.value for row in rows if row.key is not None}), newest,
                       fingerprint_of(newest))
    _remembered[str(db.engine.url)] = read_now
    return read_now


def remembered() -> Current:
    """The settings this process last read from this database, perhaps out of date (compare their fingerprint with
    fingerprint_columns()), or read now when there are none."""
    return _remembered.get(str(db.engine.url)) or read()


def get(key: str) -> Any:
    return current()[key]


def update(values: dict[str, str], actor: str, user_id: int | None = None) -> dict[str, tuple[Any, Any]]:
    """Parse and store the given settings; raises ValidationError before storing anything."""
    parsed = {key: SETTINGS[key][1](str(text)) for key, text in values.items()}
    before = current()
    changes = {key: (before[key], value) for key, value in parsed.items() if before[key] != value}
    for key, (_, value) in changes.items():
        row = db.session.get(AppSetting, key) or AppSetting(key=key)
        row.value, row.updated_by = str(value), actor
        db.session.add(row)
    audit.record(actor, "app_settings", "portal", changes, user_id)
    return changes
