"""CSV export, streamed: rows go from the database cursor to the file in batches, never all at once."""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from sqlalchemy import select

from .. import clock
from ..health import metrics, snapshots
from ..extensions import db
from ..models import PUBLIC_ID_OFFSET, Customer, Engagement, Onboarding, format_id
from .csvformat import HEADERS, cell, writer

BATCH = 5000
# engagement.csv's cells are ids, dates and counts, which csvformat.cell() writes as their plain text: the database
# can write that text itself. The date as text too: SQLite keeps it so, and PostgreSQL's to_char does not depend on
# the server's DateStyle.
ENGAGEMENT = ("SELECT 'e' || CAST(id + {offset} AS VARCHAR(20)), 'c' || CAST(customer_id + {offset} AS VARCHAR(20)), "
              "{date}, {counts} FROM engagement ORDER BY id")


def engagement_sql(dialect_name: str) -> str:
    date = "to_char(date, 'YYYY-MM-DD')" if dialect_name == "postgresql" else "date"
    return ENGAGEMENT.format(offset=PUBLIC_ID_OFFSET, date=date, counts=", ".join(Engagement.COUNTS))


def stream(statement) -> Iterable:
    return db.session.execute(statement.execution_options(yield_per=BATCH))


def customers_rows() -> Iterator[tuple]:
    columns = [getattr(Customer, name) for name in HEADERS["customers.csv"]]
    for row in stream(select(*columns).order_by(Customer.id)):
        yield (format_id("c", row[0]), *row[1:])


def onboarding_rows() -> Iterator[tuple]:
    columns = [getattr(Onboarding, name) for name in HEADERS["onboarding.csv"]]
    for row in stream(select(*columns).order_by(Onboarding.id)):
        yield (format_id("o", row[0]), format_id("c", row[1]), *row[2:])


def engagement_rows() -> Iterator[tuple]:
    """Straight from the driver's cursor, read as it goes: no per-row objects or type conversions (9 million rows
    is a normal file)."""
    connection = db.session.connection()
    yield from connection.exec_driver_sql(engagement_sql(connection.dialect.name),
                                          execution_options={"stream_results": True, "yield_per": BATCH})


def engagement_copy() -> Iterator[str] | None:
    """engagement.csv's rows as CSV text written by PostgreSQL's COPY, BATCH rows a chunk; None on SQLite.

    The same text engagement_rows() through cell() gives (tests compare them), at a fraction of the cost.
    """
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return None

    def chunks() -> Iterator[str]:
        pending = []
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY ({engagement_sql('postgresql')}) TO STDOUT (FORMAT csv)") as copy:
                for data in copy:  # a row each
                    pending.append(bytes(data))
                    if len(pending) == BATCH:
                        yield b"".join(pending).decode()
                        pending = []
        yield b"".join(pending).decode()

    return chunks()


def combined_rows(today: dt.date | None = None) -> Iterator[tuple]:
    """Derived metrics, computed the way the health score is, so each row's score follows from its cells."""
    today = today or clock.today()
    settings = snapshots.current_settings()
    weights = snapshots.weights_of(settings)
    query = snapshots.inputs_query(today, weights.window_days).add_columns(
        Customer.organization, Customer.cohort, Customer.signup_date, Onboarding.days_to_complete, Onboarding.blocker_type
    )
    for row in stream(query):
        result, steps = snapshots.assess(row, weights)
        done = sum(steps.values())
        yield (
            format_id("c", row.id), row.organization, row.cohort, row.signup_date,
            done == len(metrics.STEPS), metrics.onboarding_percent(done), row.days_to_complete,
            row.blocker_type or "none", int(row.issues_tagged), int(row.prs_generated), int(row.prs_merged),
            metrics.success_rate(int(row.prs_merged), int(row.prs_generated)), int(row.days_active),
            result.score, result.status,
        )


EXPORTS: dict[str, Callable[[], Iterator[tuple]]] = {
    "customers.csv": customers_rows,
    "onboarding.csv": onboarding_rows,
    "engagement.csv": engagement_rows,
    "combined_metrics.csv": combined_rows,
}


# Files the database can write as CSV text itself, when it can (else None).
COPIES: dict[str, Callable[[], Iterator[str] | None]] = {"engagement.csv": engagement_copy}


def header(name: str) -> str:
    return ",".join(HEADERS[name]) + "\n"


def write_csv(name: str, out: IO[str]) -> None:
    copied = COPIES[name]() if name in COPIES else None
    if copied is not None:
        out.write(header(name))
        for chunk in copied:
            out.write(chunk)
        return
    csv_writer = writer(out)
    csv_writer.writerow(HEADERS[name])
    csv_writer.writerows([cell(value) for value in row] for row in EXPORTS[name]())


def csv_chunks(name: str) -> Iterator[str]:
    """The file as text chunks of about BATCH rows, for a streamed HTTP response."""
    copied = COPIES[name]() if name in COPIES else None
    if copied is not None:
        yield header(name)
        yield from copied
        return
    buffer = io.StringIO()
    csv_writer = writer(buffer)
    csv_writer.writerow(HEADERS[name])
    for number, row in enumerate(EXPORTS[name](), start=1):
        csv_writer.writerow([cell(value) for value in row])
        if number % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_zip(target: str | Path | IO[bytes]) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in EXPORTS:
            with archive.open(name, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
                write_csv(name, out)


def default_path(directory: Path) -> Path:
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    return directory / f"customer-tracking-{stamp}.zip"
