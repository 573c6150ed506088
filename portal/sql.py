"""Small helpers for statements that differ between SQLite and PostgreSQL."""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Connection, Table, bindparam, literal_column, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from .extensions import db


# Zero written into the SQL rather than bound as a parameter, in the statements a webhook delivery runs: psycopg
# keeps its translation of a statement (placeholders to $n) only for statements under 4,096 characters and 50
# parameters, and re-parses a longer one on every execution.
ZERO = literal_column("0")


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


def update_by_id(table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Update rows of table by id, each row a dict with "key" (the id) and the same columns to set. On PostgreSQL
    in one statement (UPDATE ... FROM unnest(arrays), one array parameter a column), so the statement triggers that
    keep the analytics tables run once rather than once a row; on SQLite one statement a row, in-process."""
    if not rows:
        return
    if dialect() != "postgresql":
        db.session.execute(update(table).where(table.c.id == bindparam("key")), list(rows))
        return
    names = tuple(name for name in rows[0] if name != "key")
    db.session.execute(update_from_arrays(table, names),
                       {"key": [row["key"] for row in rows], **{name: [row[name] for row in rows] for name in names}})


@functools.lru_cache(maxsize=16)
def update_from_arrays(table: Table, names: tuple[str, ...]):
    compiled = db.engine.dialect.type_compiler_instance
    typed = [("key", table.c.id.type), *((name, table.c[name].type) for name in names)]
    arrays = ", ".join(f"CAST(:{name} AS {compiled.process(type_)}[])" for name, type_ in typed)
    assignments = ", ".join(f"{name} = changed.{name}" for name in names)
    return text(f"UPDATE {table.name} SET {assignments} FROM unnest({arrays}) AS changed (key, {', '.join(names)}) "
                f"WHERE {table.name}.id = changed.key")


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


@contextmanager
def unsynced_autocommit() -> Iterator[Connection]:
    """A connection of its own on which every statement commits at once, without waiting for the disk.

    For frequent small writes that must not each cost a flush to disk (about 3 ms on this project's machine, on
    both databases) nor, on PostgreSQL, round trips for BEGIN and COMMIT. Such a commit survives this process
    dying, as any commit does, and never leaves the database inconsistent; a crash of the database server or of
    the machine may lose the last moments of them (PostgreSQL: synchronous_commit off, at most 3 x wal_writer_delay;
    SQLite in WAL mode: synchronous NORMAL), unless a commit that waits for the disk came after them: the log is
    written in order, and flushing it for one commit flushes every commit before it.
    """
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        if connection.dialect.name == "postgresql":
            restore = "RESET synchronous_commit"
            connection.exec_driver_sql("SET synchronous_commit = off")
        else:
            restore = f"PRAGMA synchronous = {int(connection.exec_driver_sql('PRAGMA synchronous').scalar())}"
            connection.exec_driver_sql("PRAGMA synchronous = NORMAL")
        try:
            yield connection
        finally:
            try:
                connection.exec_driver_sql(restore)
            except DBAPIError:
                connection.invalidate()  # never back to the pool with the setting
