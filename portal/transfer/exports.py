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
from ..models import Customer, Engagement, Onboarding, format_id
from .csvformat import HEADERS, cell, writer

BATCH = 5000


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
    columns = [getattr(Engagement, name) for name in HEADERS["engagement.csv"]]
    for row in stream(select(*columns).order_by(Engagement.id)):
        yield (format_id("e", row[0]), format_id("c", row[1]), *row[2:])


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


def write_csv(name: str, out: IO[str]) -> None:
    csv_writer = writer(out)
    csv_writer.writerow(HEADERS[name])
    for row in EXPORTS[name]():
        csv_writer.writerow([cell(value) for value in row])


def csv_chunks(name: str) -> Iterator[str]:
    """The file as text chunks of about BATCH rows, for a streamed HTTP response."""
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
