"""The audit trail: who changed which field of which record, from what to what."""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import insert

from .extensions import db
from .models import AuditLog

INSERT = insert(AuditLog.__table__)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply_changes(record: Any, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the fields that differ and return them as {field: (old, new)}."""
    changes = {}
    for field, new in values.items():
        old = getattr(record, field)
        if old != new:
            setattr(record, field, new)
            changes[field] = (old, new)
    return changes


def record(actor: str, table: str, record_id: str, changes: Mapping[str, tuple[Any, Any]], user_id: int | None = None) -> None:
    """One row per changed field, inserted at once in the caller's transaction: a plain INSERT rather than ORM
    objects, since nothing reads them back before the commit and every webhook delivery writes some."""
    if not changes:
        return
    db.session.execute(INSERT, rows(actor, table, record_id, changes, user_id))


def rows(actor: str, table: str, record_id: str, changes: Mapping[str, tuple[Any, Any]],
         user_id: int | None = None) -> list[dict]:
    """record()'s rows, for a caller that inserts many records' changes in one statement (imports)."""
    return [{"actor": actor, "user_id": user_id, "table_name": table, "record_id": record_id,
             "field": field, "old_value": _text(old), "new_value": _text(new)}
            for field, (old, new) in changes.items()]


def created(actor: str, table: str, record_id: str, user_id: int | None = None) -> None:
    record(actor, table, record_id, {"record": (None, "created")}, user_id)
