"""Saving the settings page: the health formula (a new version each change) and the portal settings."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..health import metrics, settings, snapshots
from ..extensions import db
from ..models import HealthSettings
from ..validation import ValidationError

HEALTH_FIELDS = tuple(metrics.Weights.__dataclass_fields__)
APP_FIELDS = tuple(settings.SETTINGS)


@dataclass(frozen=True)
class Saved:
    version: int | None  # the new health-settings version, when the formula changed
    app_changes: dict[str, tuple[Any, Any]]

    @property
    def message(self) -> str:
        if self.version is not None:
            return "Settings saved; every score was recalculated."
        return "Settings saved." if self.app_changes else "Nothing changed: the settings are as they were."


def initial() -> dict[str, Any]:
    """The values the form starts from: the newest health settings and the portal settings."""
    weights = vars(snapshots.weights_of(snapshots.current_settings()))
    return {**{name: plain(value) for name, value in weights.items()}, **settings.current()}


def plain(value: Any) -> Any:
    """30.00 -> 30 and 0.250 -> 0.25, as people write them; whole numbers unchanged."""
    return Decimal(format(value.normalize(), "f")) if isinstance(value, Decimal) else value


def versions() -> list[HealthSettings]:
    return list(db.session.scalars(select(HealthSettings).order_by(HealthSettings.version.desc())))


def new_version(values: Mapping[str, Any], actor: str, actor_id: int | None) -> int | None:
    """Add a health-settings version when a value differs from the newest; old versions are never edited."""
    current = snapshots.current_settings()
    changes = {name: (getattr(current, name), values[name]) for name in HEALTH_FIELDS
               if getattr(current, name) != values[name]}
    if not changes:
        return None
    version = HealthSettings(version=current.version + 1, created_by=actor, **{name: values[name] for name in HEALTH_FIELDS})
    db.session.add(version)
    try:
        db.session.flush()
    except IntegrityError:  # the same version number, added by a concurrent save; the caller rolls back
        raise ValidationError("Another admin saved the settings at the same moment: check them and save again.") from None
    audit.record(actor, "health_settings", f"v{version.version}", changes, actor_id)
    return version.version


def save(values: Mapping[str, Any], actor: str, actor_id: int | None = None) -> Saved:
    """Store what changed and recalculate every score when the formula did; the caller commits."""
    version = new_version(values, actor, actor_id)
    app_changes = settings.update({key: str(values[key]) for key in APP_FIELDS}, actor, actor_id)
    if version is not None:
        snapshots.recalculate()
    return Saved(version, app_changes)
