"""Small helpers for statements that differ between SQLite and PostgreSQL."""
from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Table, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite

from .extensions import db


def dialect() -> str:
    """The database's dialect name: the app has one engine, and asking it is cheaper than asking the session."""
    return db.engine.dialect.name


def insert_for(table, dialect_name: str | None = None):
    """INSERT into table in the dialect's own construct, which has ON CONFLICT (both databases speak it);
    dialect_name defaults to the session's database."""
    return (postgresql if (dialect_name or dialect()) == "postgresql" else sqlite).insert(table)


def upsert(table: Table, rows: Sequence[Mapping[str, Any]], keys: Iterable[str], replace: Iterable[str] = (),
           add: Iterable[str] = (), returning: Iterable[str] = ()):
    """INSERT ... ON CONFLICT (keys) DO UPDATE: atomic on both databases, one statement for many rows.

    replace: columns that take the new row's value; add: columns the new row's value is added to.
    returning: columns of the stored rows to return; the result is returned, None without rows. On
    PostgreSQL the result also says whether each row was `inserted` (its xmax is 0 only when this
    statement created it); on SQLite that column is NULL.
    """
    if isinstance(replace, Mapping):  # the former {column: expression} form: say so rather than replace silently
        raise TypeError("upsert() takes column names: replace= for the new value, add= to add it to the stored one")
    if not rows:
        return None
    statement = upsert_statement(table, tuple(keys), tuple(replace), tuple(add), tuple(returning), dialect())
    return db.session.execute(statement, dict(rows[0]) if len(rows) == 1 else list(rows))


@functools.lru_cache(maxsize=32)
def upsert_statement(table: Table, keys: tuple[str, ...], replace: tuple[str, ...], add: tuple[str, ...],
                     returning: tuple[str, ...], dialect_name: str):
    """Built once per shape: building and cache-keying the statement cost more than running it."""
    statement = insert_for(table, dialect_name)
    values = {name: statement.excluded[name] for name in replace}
    values.update({name: table.c[name] + statement.excluded[name] for name in add})
    statement = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
    if not returning:
        return statement
    inserted = literal_column("xmax = 0" if dialect_name == "postgresql" else "NULL").label("inserted")
    return statement.returning(*(table.c[name] for name in returning), inserted)


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
