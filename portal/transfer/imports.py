"""All-or-nothing CSV import: every line is checked first, then everything is written at once.

Rows are keyed by id (customers without an id by email, engagement without an id by customer and
day), so importing the same file twice changes nothing. Memory stays bounded however bad a file is: only
the first bad lines are kept (csvformat.BadLines), and once an import is known to be rejected its later
rows are still checked, and counted when bad, but no longer kept for writing.
"""
from __future__ import annotations

import csv
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from flask import current_app
from sqlalchemy import bindparam, select, update

from .. import audit, clock, validation
from ..health import metrics, snapshots
from ..customers import service as customers
from ..emails import content as email_content, outbox
from ..extensions import db
from ..models import CUSTOMER_STATUSES, Customer, Engagement, Onboarding, format_id, parse_id
from ..sql import sync_sequences
from ..validation import ValidationError
from .csvformat import HEADERS, IMPORTABLE, BadLines, ImportRejected, LineError, read
from .limits import FileRefused, Limits, check_directory, members_of, text_of

COUNTS = Engagement.COUNTS
DERIVED = "combined_metrics.csv"
# What a damaged file raises while it is read (RuntimeError: an encrypted zip): the file's fault, not the portal's.
UNREADABLE = (csv.Error, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)
# Parsed customer ids and dates kept per text, at most: " c1001" and "c1001 " are two texts, so a hostile
# file could otherwise grow the caches with every line.
CACHED_TEXTS = 50_000
# Settings (instance/config.py or the test config) that override Limits' defaults.
LIMIT_SETTINGS = {"file_bytes": "IMPORT_MAX_UNCOMPRESSED_BYTES", "lines": "IMPORT_MAX_LINES",
                  "members": "IMPORT_MAX_ZIP_MEMBERS"}


def configured_limits() -> Limits:
    config = current_app.config
    return Limits(**{field: int(config[name]) for field, name in LIMIT_SETTINGS.items() if config.get(name)})


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    customer_ids: set[int] = field(default_factory=set)

    def count(self, name: str, outcome: str) -> None:
        bucket = getattr(self, outcome)
        bucket[name] = bucket.get(name, 0) + 1

    def summary(self) -> str:
        names = [name for name in IMPORTABLE if name in self.created or name in self.updated or name in self.unchanged]
        return "; ".join(
            f"{name}: {self.created.get(name, 0)} created, {self.updated.get(name, 0)} updated, "
            f"{self.unchanged.get(name, 0)} unchanged"
            for name in names
        ) or "nothing to import"


class Batch:
    """One import: the files' rows are checked against the database and each other, then applied."""

    def __init__(self, actor: str, limits: Limits):
        self.actor = actor
        self.limits = limits
        self.errors = BadLines()
        self.result = ImportResult()
        self.today = clock.today()
        self.customers = {
            row.id: row for row in db.session.execute(
                select(Customer.id, Customer.email, Customer.github_username, Customer.erased_at))
        }
        # An import never brings an erased customer's personal data back (from an export made before the erasure).
        self.erased = {key for key, row in self.customers.items() if row.erased_at is not None}
        self.new_customer_ids: set[int] = set()
        self.created_ids: set[int] = set()  # customers this import creates, by id, for their welcome emails
        self.reached: dict[str, set[int]] = {}  # milestone: customers whose step became true in this import

    def error(self, name: str, line: int, column: str, reason: str) -> None:
        self.errors.add(LineError(line, column, reason, name))

    def check(self, name: str, line: int, column: str, parse: Callable, *args):
        try:
            return parse(*args)
        except ValidationError as problem:
            self.error(name, line, problem.field or column, str(problem))
            return None

    def customer_key(self, name: str, line: int, text: str) -> int | None:
        key = parse_id("c", text)
        if key is None:
            self.error(name, line, "customer_id", f"invalid customer id {text!r}")
        elif key not in self.customers and key not in self.new_customer_ids:
            self.error(name, line, "customer_id", f"unknown customer {text.strip()}")
            return None
        return key

    # customers.csv -----------------------------------------------------------------------------

    def customers_file(self, name: str, stream: IO[str]) -> list:
        planned, seen_ids, seen_emails, seen_logins = [], {}, {}, {}
        by_email = {row.email.lower(): row.id for row in self.customers.values()}
        by_login = {row.github_username.lower(): row.id for row in self.customers.values() if row.github_username}
        for line, cells in read(name, stream, self.errors, self.limits):
            raw = dict(zip(HEADERS[name], cells))
            if raw["id"].strip() and parse_id("c", raw["id"]) in self.erased:
                self.result.count(name, "unchanged")
                continue
            before = self.errors.problems
            problems: list[ValidationError] = []
            values = customers.clean_customer(raw, problems)
            for problem in problems:
                self.error(name, line, problem.field, str(problem))
            signup = self.check(name, line, "signup_date", validation.recorded_date, raw["signup_date"], "signup_date",
                                self.today)
            status = self.check(name, line, "status", validation.choice, raw["status"] or "active", CUSTOMER_STATUSES, "status")
            key = None
            if raw["id"].strip():
                key = parse_id("c", raw["id"])
                if key is None:
                    self.error(name, line, "id", f"invalid customer id {raw['id']!r}")
            if self.errors.problems > before:
                continue
            key = key or by_email.get(values["email"])
            email, login = values["email"], values["github_username"].lower()
            for seen, value, column in ((seen_ids, key, "id"), (seen_emails, email, "email"), (seen_logins, login, "github_username")):
                if value is not None and value in seen:
                    self.error(name, line, column, f"duplicate of line {seen[value]}")
                seen.setdefault(value, line)
            for index, value, column in ((by_email, email, "email"), (by_login, login, "github_username")):
                owner = index.get(value)
                if owner is not None and owner != key:
                    self.error(name, line, column, f"{values[column]} already belongs to {format_id('c', owner)}")
            if self.errors.problems == before:
                if not self.errors:  # a rejected file's rows would never be applied
                    planned.append((key, {**values, "signup_date": signup, "status": status}))
                if key is not None and key not in self.customers:
                    self.new_customer_ids.add(key)
        return planned

    def apply_customers(self, name: str, planned: list) -> None:
        # Rows with their own id first, so PostgreSQL's sequence can be moved past them before the rest.
        for key, values in planned:
            if key is not None:
                self.save_customer(name, key, values)
        sync_sequences(Customer.__table__)
        for key, values in planned:
            if key is None:
                self.save_customer(name, key, values)
        db.session.flush()

    def save_customer(self, name: str, key: int | None, values: dict) -> None:
        customer = db.session.get(Customer, key) if key in self.customers else None
        if customer is None:
            customer = Customer(id=key, **values)
            db.session.add(customer)
            db.session.flush()
            customer.onboarding = Onboarding(id=customer.id)
            audit.created(self.actor, "customers", customer.public_id)
            self.created_ids.add(customer.id)
            self.result.count(name, "created")
            self.result.customer_ids.add(customer.id)
            return
        changes = audit.apply_changes(customer, values)
        audit.record(self.actor, "customers", customer.public_id, changes)
        self.result.count(name, "updated" if changes else "unchanged")
        if changes:
            self.result.customer_ids.add(customer.id)

    # onboarding.csv ----------------------------------------------------------------------------

    def onboarding_file(self, name: str, stream: IO[str]) -> list:
        planned, seen = [], {}
        for line, cells in read(name, stream, self.errors, self.limits):
            raw = dict(zip(HEADERS[name], cells))
            before = self.errors.problems
            customer_key = self.customer_key(name, line, raw["customer_id"])
            if raw["id"].strip() and customer_key is not None and parse_id("o", raw["id"]) != customer_key:
                self.error(name, line, "id", f"{raw['id'].strip()} is not the onboarding of {raw['customer_id'].strip()} "
                           f"(that is {format_id('o', customer_key)})")
            steps = {step: self.check(name, line, step, validation.boolean, raw[step], step) for step in metrics.STEPS}
            completed = days = None
            if raw["completed_date"].strip():
                completed = self.check(name, line, "completed_date", validation.recorded_date, raw["completed_date"],
                                       "completed_date", self.today)
            if raw["days_to_complete"].strip():
                days = self.check(name, line, "days_to_complete", validation.integer, raw["days_to_complete"], "days_to_complete")
            blocker = self.check(name, line, "blocker_type", validation.choice, raw["blocker_type"] or "none",
                                 metrics.BLOCKER_TYPES, "blocker_type")
            notes = self.check(name, line, "notes", validation.text, raw["notes"], "notes",
                               customers.NOTES_LENGTH)
            if customer_key is not None and customer_key in seen:
                self.error(name, line, "customer_id", f"duplicate of line {seen[customer_key]}")
            seen.setdefault(customer_key, line)
            if self.errors.problems == before and not self.errors:  # a rejected file's rows would never be applied
                planned.append((customer_key, steps, completed, days, blocker, notes))
        return planned

    def apply_onboarding(self, name: str, planned: list) -> None:
        now = clock.now()
        for customer_key, steps, completed, days, blocker, notes in planned:
            customer = db.session.get(Customer, customer_key)
            onboarding = customer.onboarding
            values = {"blocker_type": blocker, "notes": onboarding.notes if customer.erased_at else notes, **steps}
            for step, done in steps.items():
                if done != getattr(onboarding, step):
                    values[f"{step}_at"] = now if done else None
            if metrics.is_complete(steps):
                completed = completed or onboarding.completed_date or self.today
                values["completed_date"] = completed
                values["days_to_complete"] = days if days is not None else metrics.days_to_complete(customer.signup_date, completed)
            else:
                values["completed_date"] = values["days_to_complete"] = None
            changes = audit.apply_changes(onboarding, values)
            audit.record(self.actor, "onboarding", onboarding.public_id, changes)
            self.note_milestones(customer_key, changes)
            self.result.count(name, "updated" if changes else "unchanged")
            if changes:
                self.result.customer_ids.add(customer_key)

    def note_milestones(self, customer_key: int, changes: dict) -> None:
        reached = [milestone for step, milestone in email_content.STEP_MILESTONES.items()
                   if changes.get(step, (None, False))[1] is True]
        was_completed, completed = changes.get("completed_date", (None, None))
        if was_completed is None and completed is not None:
            reached.append("onboarding_completed")
        for milestone in reached:
            self.reached.setdefault(milestone, set()).add(customer_key)

    def queue_emails(self) -> None:
        """Welcome for new customers not already welcomed, and the milestones steps reached: a statement each."""
        outbox.queue_milestone_for("welcome", self.created_ids, unless_step=email_content.WELCOME_STEP)
        for milestone, customer_ids in self.reached.items():
            outbox.queue_milestone_for(milestone, customer_ids)

    # engagement.csv ----------------------------------------------------------------------------

    def engagement_file(self, name: str, stream: IO[str]) -> list:
        """The hot path of large imports: plain loops over tuples, no per-row queries.

        A file repeats few customers and days, so their parsed values are kept per text (the good
        ones, up to CACHED_TEXTS); rows are tuples, which the garbage collector does not have to track.
        """
        rows, seen_ids, seen_days, customers, days = [], {}, {}, {}, {}
        error, bad = self.error, self.errors
        for line, (row_id, customer_text, day_text, *count_texts) in read(name, stream, bad, self.limits):
            before = bad.problems
            key = None
            if row_id:
                key = parse_id("e", row_id)
                if key is None:
                    error(name, line, "id", f"invalid engagement id {row_id!r}")
                elif key in seen_ids:
                    error(name, line, "id", f"duplicate of line {seen_ids[key]}")
                else:
                    seen_ids[key] = line
            customer = customers.get(customer_text)
            if customer is None:
                customer = self.customer_key(name, line, customer_text)
                if customer is not None and len(customers) < CACHED_TEXTS:
                    customers[customer_text] = customer
            day = days.get(day_text)
            if day is None:
                day = self.check(name, line, "date", validation.recorded_date, day_text, "date", self.today)
                if day is not None and len(days) < CACHED_TEXTS:
                    days[day_text] = day
            # The fast path: nine digits at most are within an INTEGER column; " 3" and "+3" are valid too.
            # (A list made into a tuple: quicker than a tuple of a generator.)
            counts = tuple([int(text) if len(text) < 10 and text.isascii() and text.isdigit()
                            else self.check(name, line, column, validation.integer, text, column)
                            for column, text in zip(COUNTS, count_texts)])
            if bad.problems > before:
                continue
            if (customer, day) in seen_days:
                error(name, line, "date", f"{customer_text.strip()} on {day} is also on line {seen_days[customer, day]}")
                continue
            seen_days[customer, day] = line
            if not bad.count:  # a rejected file's rows would never be applied
                rows.append((line, key, customer, day, counts))
        if rows:
            self.check_engagement_against_database(name, rows)
        return rows

    def check_engagement_against_database(self, name: str, rows: list) -> None:
        """Resolve each row to an existing id or a new one; a clash with another row is a line error."""
        days = [row[3] for row in rows]
        first, last = min(days), max(days)
        columns = (Engagement.id, Engagement.customer_id, Engagement.date, *(getattr(Engagement, c) for c in COUNTS))
        existing = db.session.execute(select(*columns).where(Engagement.date.between(first, last))).all()
        self.engagement_by_id = {row.id: row for row in existing}
        self.engagement_by_day = {(row.customer_id, row.date): row for row in existing}
        wanted = {row[1] for row in rows if row[1] is not None} - self.engagement_by_id.keys()
        if wanted:  # the file's ids may name rows of other days: look them up by range, not by a huge IN list
            outside = select(*columns[:3]).where(Engagement.id.between(min(wanted), max(wanted)),
                                                 ~Engagement.date.between(first, last))
            self.engagement_by_id.update((row.id, row) for row in db.session.execute(outside) if row.id in wanted)
        for line, key, customer, day, _ in rows:
            by_id = self.engagement_by_id.get(key) if key is not None else None
            by_day = self.engagement_by_day.get((customer, day))
            if by_id is not None and (by_id.customer_id, by_id.date) != (customer, day):
                self.error(name, line, "id", f"{format_id('e', key)} is {format_id('c', by_id.customer_id)} on {by_id.date} "
                           "in the portal")
            elif by_id is None and key is not None and by_day is not None:
                self.error(name, line, "date", f"{format_id('c', customer)} already has {format_id('e', by_day.id)} "
                           f"on {day}")

    def apply_engagement(self, name: str, rows: list) -> None:
        inserts_with_id, inserts, updates, iso_days = [], [], [], {}
        for _, key, customer, day, counts in rows:
            existing = self.engagement_by_day.get((customer, day))
            if existing is None:
                # ISO text rather than date objects: both drivers take it, and sqlite3's date adapter is deprecated.
                iso = iso_days.get(day) or iso_days.setdefault(day, day.isoformat())
                if key is None:
                    inserts.append((customer, iso, *counts))
                else:
                    inserts_with_id.append((key, customer, iso, *counts))
                self.result.customer_ids.add(customer)
                continue
            changes = {c: (old, new) for c, old, new in zip(COUNTS, existing[3:], counts) if old != new}
            if changes:
                updates.append({"key": existing.id, **dict(zip(COUNTS, counts))})
                audit.record(self.actor, "engagement", format_id("e", existing.id), changes)
                self.result.customer_ids.add(customer)
            self.result.count(name, "updated" if changes else "unchanged")
        table = Engagement.__table__
        for columns, batch in ((("id", "customer_id", "date", *COUNTS), inserts_with_id),
                               (("customer_id", "date", *COUNTS), inserts)):
            if batch:
                insert_rows(table, columns, batch)
                sync_sequences(table)
        if updates:
            db.session.execute(update(table).where(table.c.id == bindparam("key")), updates)
        created = len(inserts_with_id) + len(inserts)
        if created:
            self.result.created[name] = created
            audit.record(self.actor, "engagement", name, {"rows_created": (None, created)})


def insert_rows(table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Many plain rows at once, with no per-row dicts or type processing: COPY on PostgreSQL,
    the driver's executemany on SQLite. Only for values both take as they are (integers, ISO dates).
    """
    connection = db.session.connection()
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


READERS = {"customers.csv": "customers_file", "onboarding.csv": "onboarding_file", "engagement.csv": "engagement_file"}
APPLIERS = {"customers.csv": "apply_customers", "onboarding.csv": "apply_onboarding", "engagement.csv": "apply_engagement"}


def import_files(files: dict[str, IO[str]], actor: str = "import", limits: Limits | None = None) -> ImportResult:
    """Check every file, then apply them all in the caller's transaction; raise ImportRejected on any bad line,
    FileRefused on a file past the limits (by default the app's configured_limits())."""
    unknown = [name for name in files if name not in IMPORTABLE and name != DERIVED]
    if unknown:
        raise ImportRejected([LineError(0, "", f"not one of {', '.join(IMPORTABLE)}", name) for name in unknown])
    batch = Batch(actor, limits or configured_limits())
    planned = {name: getattr(batch, READERS[name])(name, files[name]) for name in IMPORTABLE if name in files}
    if batch.errors:
        raise ImportRejected(batch.errors)
    for name, rows in planned.items():
        getattr(batch, APPLIERS[name])(name, rows)
    db.session.flush()
    batch.queue_emails()
    if batch.result.customer_ids:
        many = len(batch.result.customer_ids) > 500
        snapshots.recalculate(None if many else batch.result.customer_ids, batch.today)
    return batch.result


def import_path(path: str | Path, actor: str = "import", limits: Limits | None = None) -> ImportResult:
    """An export zip, or one of customers.csv, onboarding.csv, engagement.csv."""
    path, limits = Path(path), limits or configured_limits()
    # Each file is closed before the archive even when the import is rejected, or the archive stays open.
    with ExitStack() as files:
        if zipfile.is_zipfile(path):
            raw = files.enter_context(path.open("rb"))
            check_directory(raw, path.name, limits)
            archive = files.enter_context(zipfile.ZipFile(raw))
            # Opening a member reads nothing yet: a name the import refuses is never decompressed.
            streams = {name: files.enter_context(text_of(archive.open(member), name, limits))
                       for name, member in members_of(archive, path.name, (*IMPORTABLE, DERIVED), limits).items()}
        else:
            streams = {path.name: files.enter_context(text_of(path.open("rb"), path.name, limits))}
        return import_files(streams, actor, limits)
