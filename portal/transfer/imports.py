"""All-or-nothing CSV import: every line is checked first, then everything is written at once.

Rows are keyed by id (customers without an id by email, engagement without an id by customer and
day), so importing the same file twice changes nothing. Memory stays bounded whatever the file: only the
first bad lines are kept (csvformat.BadLines); checked rows wait on disk (a spool for customers and
onboarding, a temporary table for engagement, whose checks across rows the database makes) and are written
in batches of set-based statements, in the caller's transaction. What stays in memory is what the checks
across rows need: the customers' ids, and for customers.csv and onboarding.csv their emails and logins.
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
from sqlalchemy import insert, select

from .. import audit, clock, validation
from ..health import metrics, snapshots
from ..customers import service as customers
from ..emails import content as email_content, outbox
from ..extensions import db
from ..models import CUSTOMER_STATUSES, PUBLIC_ID_OFFSET, Customer, Engagement, Onboarding, format_id, parse_id
from ..sql import sync_sequences, update_by_id
from ..validation import ValidationError
from .csvformat import HEADERS, IMPORTABLE, BadLines, ImportRejected, LineError, read
from .keys import Keys
from .limits import FileRefused, Limits, check_directory, members_of, text_of
from .spool import Spool
from .staging import EngagementStage

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
# Rows a statement writes at once (setting IMPORT_BATCH_ROWS): large enough that a statement's own cost is
# spread thin, small enough that the rows in flight stay a few megabytes, and their ids fit an IN list.
BATCH_ROWS = 5000
# Customer columns an import sets, and onboarding's: the step's time goes with each step.
CUSTOMER_VALUES = ("email", "organization", "github_username", "cohort", "industry", "team_size", "signup_date",
                   "status")
ONBOARDING_VALUES = ("blocker_type", "notes", *metrics.STEPS, *(f"{step}_at" for step in metrics.STEPS),
                     "completed_date", "days_to_complete")


def configured_limits() -> Limits:
    config = current_app.config
    return Limits(**{field: int(config[name]) for field, name in LIMIT_SETTINGS.items() if config.get(name)})


def configured_batch() -> int:
    return int(current_app.config.get("IMPORT_BATCH_ROWS") or BATCH_ROWS)


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    customer_ids: Keys = field(default_factory=Keys)

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

    def __init__(self, actor: str, limits: Limits, rows: int = BATCH_ROWS):
        self.actor = actor
        self.limits = limits
        self.rows = rows
        self.errors = BadLines()
        self.result = ImportResult()
        self.today = clock.today()
        self.existing = Keys()
        self.erased: set[int] = set()  # an import never brings an erased customer's data back (from an older export)
        for key, erased_at in db.session.execute(select(Customer.id, Customer.erased_at)):
            self.existing.add(key)
            if erased_at is not None:
                self.erased.add(key)
        self.new_customer_ids = Keys()
        self.created_ids = Keys()  # customers this import creates, by id, for their welcome emails
        self.reached: dict[str, Keys] = {}  # milestone: customers whose step became true in this import
        self.kept: list[Spool | EngagementStage] = []

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
        elif key not in self.existing and key not in self.new_customer_ids:
            self.error(name, line, "customer_id", f"unknown customer {text.strip()}")
            return None
        return key

    def spool(self) -> Spool:
        spool = Spool(self.rows)
        self.kept.append(spool)
        return spool

    def close(self, tables: bool = True) -> None:
        for kept in self.kept:
            if tables or isinstance(kept, Spool):
                kept.close()

    def insert_audit(self, rows: list[dict]) -> None:
        if rows:
            db.session.execute(audit.INSERT, rows)

    # customers.csv -----------------------------------------------------------------------------

    def customers_file(self, name: str, stream: IO[str]) -> Spool:
        planned, seen_ids, seen_emails, seen_logins = self.spool(), {}, {}, {}
        by_email, by_login = {}, {}
        for key, email, login in db.session.execute(select(Customer.id, Customer.email, Customer.github_username)):
            by_email[email.lower()] = key
            if login:
                by_login[login.lower()] = key
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
                if key is not None and key not in self.existing:
                    self.new_customer_ids.add(key)
        return planned

    def apply_customers(self, name: str, planned: Spool) -> None:
        # Rows with their own id first, so PostgreSQL's sequence can be moved past them before the rest.
        for chunk in planned.chunks():
            self.save_customers(name, [row for row in chunk if row[0] is not None])
        sync_sequences(Customer.__table__)
        for chunk in planned.chunks():
            self.save_customers(name, [row for row in chunk if row[0] is None])

    def save_customers(self, name: str, rows: list[tuple[int | None, dict]]) -> None:
        """A batch of rows in three statements: the new customers (and their onboarding), the changed ones, the audit."""
        keys = [key for key, _ in rows if key in self.existing]
        columns = [getattr(Customer, column) for column in CUSTOMER_VALUES]
        stored = {row.id: row for row in db.session.execute(select(Customer.id, *columns).where(Customer.id.in_(keys)))}
        new = [values if key is None else {"id": key, **values} for key, values in rows if key not in stored]
        created = []
        if new and "id" in new[0]:  # a batch is all rows with their own id, or all without
            db.session.execute(insert(Customer.__table__), new)
            created = [row["id"] for row in new]
        elif new:  # the ids the database gives, in the order of the rows
            statement = insert(Customer.__table__).returning(Customer.id, sort_by_parameter_order=True)
            created = db.session.scalars(statement, new).all()
        if created:
            db.session.execute(insert(Onboarding.__table__), [{"id": key, "customer_id": key} for key in created])
        created = iter(created)
        audits, updates = [], []
        for key, values in rows:
            old = stored.get(key)
            if old is None:
                key = next(created)
                audits += audit.rows(self.actor, "customers", format_id("c", key), {"record": (None, "created")})
                self.created_ids.add(key)
                self.result.count(name, "created")
                self.result.customer_ids.add(key)
                continue
            changes = {column: (getattr(old, column), value) for column, value in values.items()
                       if getattr(old, column) != value}
            audits += audit.rows(self.actor, "customers", format_id("c", key), changes)
            self.result.count(name, "updated" if changes else "unchanged")
            if changes:
                updates.append({"key": key, **values})
                self.result.customer_ids.add(key)
        update_by_id(Customer.__table__, updates)
        self.insert_audit(audits)

    # onboarding.csv ----------------------------------------------------------------------------

    def onboarding_file(self, name: str, stream: IO[str]) -> Spool:
        planned, seen = self.spool(), {}
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

    def apply_onboarding(self, name: str, planned: Spool) -> None:
        now = clock.now()
        columns = [getattr(Onboarding, column) for column in ONBOARDING_VALUES]
        for chunk in planned.chunks():
            stored = {row.customer_id: row for row in db.session.execute(
                select(Onboarding.id, Onboarding.customer_id, *columns, Customer.signup_date, Customer.erased_at)
                .join(Customer, Customer.id == Onboarding.customer_id)
                .where(Onboarding.customer_id.in_([row[0] for row in chunk])))}
            audits, updates = [], []
            for customer_key, steps, completed, days, blocker, notes in chunk:
                onboarding = stored[customer_key]
                values = {"blocker_type": blocker, "notes": onboarding.notes if onboarding.erased_at else notes, **steps}
                for step, done in steps.items():
                    if done != getattr(onboarding, step):
                        values[f"{step}_at"] = now if done else None
                if metrics.is_complete(steps):
                    completed = completed or onboarding.completed_date or self.today
                    values["completed_date"] = completed
                    values["days_to_complete"] = (days if days is not None
                                                  else metrics.days_to_complete(onboarding.signup_date, completed))
                else:
                    values["completed_date"] = values["days_to_complete"] = None
                changes = {column: (getattr(onboarding, column), value) for column, value in values.items()
                           if getattr(onboarding, column) != value}
                audits += audit.rows(self.actor, "onboarding", format_id("o", onboarding.id), changes)
                self.note_milestones(customer_key, changes)
                self.result.count(name, "updated" if changes else "unchanged")
                if changes:
                    # Every column, the unchanged ones as they are: one statement for rows that change different ones.
                    updates.append({"key": onboarding.id, **{column: getattr(onboarding, column) for column in
                                                             ONBOARDING_VALUES}, **values})
                    self.result.customer_ids.add(customer_key)
            update_by_id(Onboarding.__table__, updates)
            self.insert_audit(audits)

    def note_milestones(self, customer_key: int, changes: dict) -> None:
        reached = [milestone for step, milestone in email_content.STEP_MILESTONES.items()
                   if changes.get(step, (None, False))[1] is True]
        was_completed, completed = changes.get("completed_date", (None, None))
        if was_completed is None and completed is not None:
            reached.append("onboarding_completed")
        for milestone in reached:
            self.reached.setdefault(milestone, Keys()).add(customer_key)

    def queue_emails(self) -> None:
        """Welcome for new customers not already welcomed, and the milestones steps reached: a statement each."""
        outbox.queue_milestone_for("welcome", self.created_ids, unless_step=email_content.WELCOME_STEP)
        for milestone, customer_ids in self.reached.items():
            outbox.queue_milestone_for(milestone, customer_ids)

    # engagement.csv ----------------------------------------------------------------------------

    def engagement_file(self, name: str, stream: IO[str]) -> EngagementStage:
        """The hot path of large imports: plain loops over tuples, no per-row queries.

        Each row's own cells are checked here; its good rows go to a temporary table (all of them, even in a
        file already rejected, so that every duplicate is found), where the database checks them against each
        other and the portal's rows. A file repeats few customers and days, so their parsed values are kept per
        text (the good ones, up to CACHED_TEXTS).
        """
        stage = EngagementStage(self.rows)
        self.kept.append(stage)
        customers, days = {}, {}
        error, bad, add = self.error, self.errors, stage.add
        for line, (row_id, customer_text, day_text, *count_texts) in read(name, stream, bad, self.limits):
            before = bad.problems
            key = None
            if row_id:
                # The fast path: "e" and nine digits at most, the id an export writes; anything else is parse_id's.
                digits = row_id[1:]
                if row_id[0] == "e" and len(row_id) < 11 and digits.isascii() and digits.isdigit():
                    key = int(digits) - PUBLIC_ID_OFFSET
                if key is None or key <= 0:
                    key = parse_id("e", row_id)
                if key is None:
                    error(name, line, "id", f"invalid engagement id {row_id!r}")
            customer = customers.get(customer_text)
            if customer is None:
                customer = self.customer_key(name, line, customer_text)
                if customer is not None and len(customers) < CACHED_TEXTS:
                    customers[customer_text] = customer
            day = days.get(day_text)
            if day is None:
                parsed = self.check(name, line, "date", validation.recorded_date, day_text, "date", self.today)
                if parsed is not None:
                    # ISO text rather than date objects: both drivers take it, and sqlite3's date adapter is deprecated.
                    day = parsed.isoformat()
                    if len(days) < CACHED_TEXTS:
                        days[day_text] = day
            # The fast path: nine digits at most are within an INTEGER column (all five together, in the usual
            # file); " 3" and "+3" are valid too, and validation.integer's.
            together = "".join(count_texts)
            if len(together) < 10 and together.isascii() and together.isdigit() and "" not in count_texts:
                counts = [*map(int, count_texts)]
            else:
                counts = [int(text) if len(text) < 10 and text.isascii() and text.isdigit()
                          else self.check(name, line, column, validation.integer, text, column)
                          for column, text in zip(COUNTS, count_texts)]
            if bad.problems > before:
                continue
            add((line, key, customer, day, *counts))
        stage.finish()
        for line, column, reason in stage.problems():
            error(name, line, column, reason)
        return stage

    def apply_engagement(self, name: str, stage: EngagementStage) -> None:
        created, updated, unchanged, customer_ids = stage.apply(self.actor)
        self.result.customer_ids |= customer_ids
        for outcome, number in (("updated", updated), ("unchanged", unchanged)):
            if number:
                getattr(self.result, outcome)[name] = number
        if created:
            self.result.created[name] = created
            audit.record(self.actor, "engagement", name, {"rows_created": (None, created)})


READERS = {"customers.csv": "customers_file", "onboarding.csv": "onboarding_file", "engagement.csv": "engagement_file"}
APPLIERS = {"customers.csv": "apply_customers", "onboarding.csv": "apply_onboarding", "engagement.csv": "apply_engagement"}


def import_files(files: dict[str, IO[str]], actor: str = "import", limits: Limits | None = None,
                 batch_rows: int | None = None) -> ImportResult:
    """Check every file, then apply them all in the caller's transaction; raise ImportRejected on any bad line,
    FileRefused on a file past the limits (by default the app's configured_limits())."""
    unknown = [name for name in files if name not in IMPORTABLE and name != DERIVED]
    if unknown:
        raise ImportRejected([LineError(0, "", f"not one of {', '.join(IMPORTABLE)}", name) for name in unknown])
    batch = Batch(actor, limits or configured_limits(), batch_rows or configured_batch())
    try:
        planned = {name: getattr(batch, READERS[name])(name, files[name]) for name in IMPORTABLE if name in files}
        if batch.errors:
            raise ImportRejected(batch.errors)
        for name, rows in planned.items():
            getattr(batch, APPLIERS[name])(name, rows)
    except ImportRejected:
        batch.close()
        raise
    except BaseException:
        batch.close(tables=False)  # a statement that failed may have ended the transaction, whose rollback drops them
        raise
    batch.close()
    db.session.flush()
    batch.queue_emails()
    if batch.result.customer_ids:
        many = len(batch.result.customer_ids) > 500
        snapshots.recalculate(None if many else list(batch.result.customer_ids), batch.today)
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
