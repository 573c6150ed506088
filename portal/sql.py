"""Small helpers for statements that differ between SQLite and PostgreSQL."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db


def dialect() -> str:
    return db.session.get_bind().dialect.name


def upsert(table: Table, rows: Sequence[Mapping[str, Any]], keys: Iterable[str], update: Mapping[str, Any] | Iterable[str]):
    """INSERT ... ON CONFLICT (keys) DO UPDATE: atomic on both databases, one statement for many rows.

    update is either column names (take the new row's value) or {column: expression}, where the
    expression may use the returned statement's `excluded` through a callable.
    """
    if not rows:
        return
    insert = postgresql.insert if dialect() == "postgresql" else sqlite.insert
    statement = insert(table)
    if isinstance(update, Mapping):
        values = {name: make(statement.excluded) if callable(make) else make for name, make in update.items()}
    else:
        values = {name: statement.excluded[name] for name in update}
    statement = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
    db.session.execute(statement, list(rows))


def sync_sequences(*tables: Table) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's sequences past them."""
    if dialect() != "postgresql":
        return
    for table in tables:
        db.session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            )
        )
