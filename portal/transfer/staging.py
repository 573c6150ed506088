"""engagement.csv's checked rows in a temporary table, so that an import of millions of them holds none in memory.

The checks across rows (an id or a customer's day twice in the file, an id that is another row's in the portal)
and the writes (replace a day's totals, insert the new days, audit both) are then a few statements over the
whole table, the same on SQLite and PostgreSQL.
"""
from __future__ import annotations

from typing import Iterator

from sqlalchemy import bindparam, text

from .. import clock
from ..extensions import db
from ..models import AuditLog, Engagement, PUBLIC_ID_OFFSET, format_id
from ..sql import sync_sequences

TABLE = "import_engagement"
COUNTS = Engagement.COUNTS
COLUMNS = ("line", "id", "customer_id", "date", *COUNTS)
MATCH = "e.customer_id = s.customer_id AND e.date = s.date"
DIFFERS = " OR ".join(f"e.{count} <> s.{count}" for count in COUNTS)

# One row per line that fails a check across rows, the first failed check of the line first: (line, check, a, b, c).
CHECKS = {
    # Another line has the same id: a is the first of them.
    "duplicate_id": f"""SELECT s.line, 1, f.first, NULL, NULL FROM {TABLE} s
        JOIN (SELECT id, MIN(line) AS first FROM {TABLE} WHERE id IS NOT NULL GROUP BY id HAVING COUNT(*) > 1) f
        ON f.id = s.id AND s.line > f.first""",
    # Another line has the same customer and day: a is the first of them, b and c the customer and the day.
    "duplicate_day": f"""SELECT s.line, 2, f.first, s.customer_id, s.date FROM {TABLE} s
        JOIN (SELECT customer_id, date, MIN(line) AS first FROM {TABLE} GROUP BY customer_id, date HAVING COUNT(*) > 1) f
        ON f.customer_id = s.customer_id AND f.date = s.date AND s.line > f.first""",
    # The id is a row of another customer or day in the portal: a is the id, b and c that row's customer and day.
    "other_row": f"""SELECT s.line, 3, s.id, e.customer_id, e.date FROM {TABLE} s JOIN engagement e ON e.id = s.id
        WHERE e.customer_id <> s.customer_id OR e.date <> s.date""",
    # A new id for a day the customer already has in the portal: a is that row's id.
    "taken_day": f"""SELECT s.line, 4, e.id, s.customer_id, s.date FROM {TABLE} s JOIN engagement e ON {MATCH}
        WHERE s.id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM engagement x WHERE x.id = s.id)""",
}


def public(prefix: str, column: str) -> str:
    return f"'{prefix}' || CAST({column} + {PUBLIC_ID_OFFSET} AS VARCHAR(20))"


CHANGES = " UNION ALL ".join(
    f"SELECT s.line AS line, {number} AS n, e.id AS key, '{count}' AS field, e.{count} AS old, s.{count} AS new "
    f"FROM {TABLE} s JOIN engagement e ON {MATCH} WHERE e.{count} <> s.{count}"
    for number, count in enumerate(COUNTS))
AUDIT = text(f"""INSERT INTO audit_log (actor, user_id, table_name, record_id, field, old_value, new_value, created_at)
    SELECT :actor, NULL, 'engagement', {public('e', 'key')}, field, CAST(old AS VARCHAR(20)), CAST(new AS VARCHAR(20)),
    :now FROM ({CHANGES}) changes ORDER BY line, n""").bindparams(bindparam("now", type_=AuditLog.created_at.type))


class EngagementStage:
    """Rows added one by one, written to the table `batch` at a time (COPY on PostgreSQL, executemany on SQLite)."""

    def __init__(self, batch: int):
        self.connection = db.session.connection()
        self.postgres = self.connection.dialect.name == "postgresql"
        self.batch = batch
        self.pending: list[tuple] = []
        schema = "pg_temp" if self.postgres else "temp"
        self.run(f"DROP TABLE IF EXISTS {schema}.{TABLE}")
        # On SQLite the line is the rowid: the table is kept in line order, as the rows come.
        line = "line INTEGER NOT NULL" if self.postgres else "line INTEGER PRIMARY KEY"
        counts = ", ".join(f"{count} INTEGER NOT NULL" for count in COUNTS)
        self.run(f"CREATE TEMPORARY TABLE {TABLE} ({line}, id INTEGER, customer_id INTEGER NOT NULL, "
                 f"date DATE NOT NULL, {counts}){' ON COMMIT DROP' if self.postgres else ''}")

    def run(self, sql: str, *args):
        return self.connection.exec_driver_sql(sql, *args)

    def add(self, row: tuple) -> None:
        """(line, id or None, customer id, ISO date, *counts)"""
        self.pending.append(row)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        names = ", ".join(COLUMNS)
        if self.postgres:
            with self.connection.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY {TABLE} ({names}) FROM STDIN") as copy:
                    for row in self.pending:
                        copy.write_row(row)
        else:
            self.run(f"INSERT INTO {TABLE} ({names}) VALUES ({', '.join('?' * len(COLUMNS))})", self.pending)
        self.pending = []

    def finish(self) -> None:
        """Every row is in: learn what the checks and writes can skip."""
        self.flush()
        first_id, last_id, first_day, last_day = self.run(
            f"SELECT MIN(id), MAX(id), MIN(date), MAX(date) FROM {TABLE}").one()
        exists = "SELECT EXISTS (SELECT 1 FROM engagement WHERE {} BETWEEN %(a)s AND %(b)s)"
        if not self.postgres:
            exists = exists.replace("%(a)s", "?").replace("%(b)s", "?")
        bounds = (lambda a, b: {"a": a, "b": b}) if self.postgres else (lambda a, b: (a, b))
        # Whether any portal row shares a day with the file (without one, every row is new) or an id range with it.
        self.overlap = first_day is not None and bool(self.run(exists.format("date"), bounds(first_day, last_day)).scalar())
        self.ids_overlap = first_id is not None and bool(self.run(exists.format("id"), bounds(first_id, last_id)).scalar())
        if self.postgres and (self.overlap or self.ids_overlap):
            self.run(f"ANALYZE {TABLE}")  # no statistics of its own otherwise: its joins with the portal's rows need them

    def problems(self) -> Iterator[tuple[int, str, str]]:
        """(line, column, reason) of the lines failing a check across rows, in line order, one problem a line."""
        checks = [CHECKS["duplicate_id"], CHECKS["duplicate_day"]]
        if self.ids_overlap:
            checks.append(CHECKS["other_row"])
        if self.overlap:
            checks.append(CHECKS["taken_day"])
        rows = self.connection.exec_driver_sql(" UNION ALL ".join(checks) + " ORDER BY 1, 2",
                                               execution_options={"stream_results": True, "yield_per": 1000})
        last = None
        for line, check, a, b, c in rows:
            if line == last:
                continue
            last = line
            if check == 1:
                yield line, "id", f"duplicate of line {a}"
            elif check == 2:
                yield line, "date", f"{format_id('c', b)} on {c} is also on line {a}"
            elif check == 3:
                yield line, "id", f"{format_id('e', a)} is {format_id('c', b)} on {c} in the portal"
            else:
                yield line, "date", f"{format_id('c', b)} already has {format_id('e', a)} on {c}"

    def apply(self, actor: str) -> tuple[int, int, int, set[int]]:
        """Write the rows: (created, updated, unchanged, customers whose days were created or changed)."""
        updated = unchanged = 0
        if self.overlap:
            updated, matched = self.run(
                f"SELECT COALESCE(SUM(CASE WHEN {DIFFERS} THEN 1 ELSE 0 END), 0), COUNT(*) "
                f"FROM {TABLE} s JOIN engagement e ON {MATCH}").one()
            unchanged = matched - updated
            customers = {key for key, in self.run(
                f"SELECT DISTINCT s.customer_id FROM {TABLE} s LEFT JOIN engagement e ON {MATCH} "
                f"WHERE e.id IS NULL OR {DIFFERS}")}
            if updated:
                db.session.execute(AUDIT, {"actor": actor, "now": clock.now()})
                assignments = ", ".join(f"{count} = s.{count}" for count in COUNTS)
                differs = " OR ".join(f"engagement.{count} <> s.{count}" for count in COUNTS)
                self.run(f"UPDATE engagement SET {assignments} FROM {TABLE} s "
                         f"WHERE engagement.customer_id = s.customer_id AND engagement.date = s.date AND ({differs})")
        else:
            customers = {key for key, in self.run(f"SELECT DISTINCT customer_id FROM {TABLE}")}
        new = f" AND NOT EXISTS (SELECT 1 FROM engagement e WHERE {MATCH})" if self.overlap else ""
        counts = ", ".join(COUNTS)
        created = 0
        # Rows with their own id first, so that PostgreSQL's sequence can be moved past them before the rest;
        # those take the next ids in the order of the file's lines.
        for with_id, order in (("id, ", ""), ("", " ORDER BY s.line")):
            where = "s.id IS NOT NULL" if with_id else "s.id IS NULL"
            rows = (f"SELECT {with_id.replace('id', 's.id')}s.customer_id, s.date, "
                    f"{', '.join('s.' + count for count in COUNTS)} FROM {TABLE} s WHERE {where}{new}{order}")
            inserted = self.run(f"INSERT INTO engagement ({with_id}customer_id, date, {counts}) {rows}").rowcount
            if inserted:
                sync_sequences(Engagement.__table__)
            created += max(inserted, 0)
        return created, updated, unchanged, customers

    def close(self) -> None:
        self.run(f"DROP TABLE IF EXISTS {'pg_temp' if self.postgres else 'temp'}.{TABLE}")
