"""The CSV files' headers, cells and line errors; pure, no Flask or database."""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import IO, Iterator

from .limits import Limits, lines_of, too_many_lines

HEADERS = {
    "customers.csv": (
        "id", "email", "organization", "github_username", "signup_date", "cohort", "industry", "team_size", "status",
    ),
    "onboarding.csv": (
        "id", "customer_id", "welcome_email_sent", "account_created", "github_action_installed",
        "first_issue_tagged", "first_pr_generated", "completed_date", "days_to_complete", "blocker_type", "notes",
    ),
    "engagement.csv": (
        "id", "customer_id", "date", "issues_tagged", "prs_generated", "prs_merged", "prs_rejected", "support_requests",
    ),
    "combined_metrics.csv": (
        "customer_id", "organization", "cohort", "signup_date", "onboarding_complete", "onboarding_percent",
        "days_to_complete", "blocker_type", "total_issues_tagged", "total_prs_generated", "total_prs_merged",
        "success_rate", "days_active", "health_score", "health_status",
    ),
}
IMPORTABLE = ("customers.csv", "onboarding.csv", "engagement.csv")
# Cells a spreadsheet would run as a formula; exported with a leading ' (also a leading ' itself,
# so that the round trip restores exactly what was there).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
FIELD_LIMIT = 128 * 1024  # characters of one cell (the csv module's default); the longest real one is 10,000
LISTED_COLUMNS = 10  # unexpected columns of a header named one by one


@dataclass(frozen=True, order=True)
class LineError:
    line: int
    column: str
    reason: str
    file: str = ""

    @property
    def where(self) -> str:
        return f"{self.file} line {self.line}" if self.file else f"line {self.line}"

    @property
    def problem(self) -> str:
        return f"{self.column}: {self.reason}" if self.column else self.reason

    def __str__(self) -> str:
        column = f", {self.column}" if self.column else ""
        return f"{self.where}{column}: {self.reason}"


LISTED_LINES = 100  # bad lines listed; the others are only counted
SHOWN_TEXT = 200  # characters of a column name or reason shown: a reason quotes the bad value, which can be long


def shortened(text: str) -> str:
    return text if len(text) <= SHOWN_TEXT else text[:SHOWN_TEXT] + "…"


class BadLines:
    """The problems of the first LISTED_LINES bad lines, in reading order, and a count of all of them.

    A file of a million bad lines costs the memory of a hundred. A line's problems are reported one after
    another, so a line is counted once however many it has. Lines mostly come in reading order; those a
    later check finds (duplicates, found by the database once every row was read) may come back to an
    earlier line, which then takes the place of the last one listed.
    """

    def __init__(self, listed: int = LISTED_LINES):
        self.listed = listed
        self.kept: dict[tuple[str, int], list[LineError]] = {}
        self.count = 0  # bad lines
        self.problems = 0  # problems reported, listed or not: grows with every one, for "did this line add any?"
        self.last: tuple[str, int] | None = None
        self.latest: tuple[int, str, int] | None = None  # reading position of the last line listed, once full

    @classmethod
    def of(cls, errors: list[LineError]) -> BadLines:
        bad = cls()
        for error in errors:
            bad.add(error)
        return bad

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, error: LineError) -> None:
        self.problems += 1
        where = (error.file, error.line)
        problems = self.kept.get(where)
        if problems is None:
            if where == self.last:
                return
            self.last = where
            self.count += 1
            if len(self.kept) >= self.listed and not self.evicts(where):
                return
            problems = self.kept[where] = []
        problems.append(LineError(error.line, shortened(error.column), shortened(error.reason), error.file))


    def evicts(self, where: tuple[str, int]) -> bool:
        """Whether a line reads before the last one listed, which it then replaces."""
        if self.latest is None:
            self.latest = max(position(*kept) for kept in self.kept)
        if position(*where) > self.latest:
            return False
        del self.kept[self.latest[1:]]
        self.latest = None
        return True


def position(file: str, line: int) -> tuple[int, str, int]:
    return (IMPORTABLE.index(file) if file in IMPORTABLE else len(IMPORTABLE)), file, line


def reading_order(error: LineError) -> tuple:
    order = IMPORTABLE.index(error.file) if error.file in IMPORTABLE else len(IMPORTABLE)
    return order, error.file, error.line, error.column


class ImportRejected(Exception):
    """A file with bad lines: nothing was imported."""

    def __init__(self, bad: BadLines | list[LineError]):
        self.bad = bad if isinstance(bad, BadLines) else BadLines.of(bad)
        self.errors = sorted((error for problems in self.bad.kept.values() for error in problems), key=reading_order)
        super().__init__(f"{self.bad.count:,} bad line(s); nothing was imported")

    def lines(self) -> list[str]:
        """One entry per listed bad line, with all of its problems: `customers.csv line 4: email: ...; team_size: ...`."""
        grouped: dict[str, list[str]] = {}
        for error in self.errors:
            grouped.setdefault(error.where, []).append(error.problem)
        return [f"{where}: {'; '.join(problems)}" for where, problems in grouped.items()]

    @property
    def unlisted(self) -> int:
        """Bad lines counted but not listed."""
        return self.bad.count - len(self.bad.kept)

    def more(self) -> str:
        """`… and 699,900 more bad lines`, or nothing when every bad line is listed."""
        if not self.unlisted:
            return ""
        return f"… and {self.unlisted:,} more bad line{'' if self.unlisted == 1 else 's'}"


def cell(value) -> str:
    """A value as the text of a CSV cell: the one function every CSV the portal writes goes through, so that no
    text a user typed (a cohort, a comment) reaches a spreadsheet as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return str(value)  # a number, -50 too, is no formula: a spreadsheet reads it as the number it is
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def restore(text: str) -> str:
    """Undo cell()'s neutralising quote."""
    if text.startswith("'") and text[1:2] and text[1] in FORMULA_STARTS:
        return text[1:]
    return text


def writer(stream: IO[str]):
    return csv.writer(stream, lineterminator="\n")


def read(name: str, stream: IO[str], errors: BadLines, limits: Limits) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, restored cells) in header order; header problems go to errors.

    Lines are counted as records with the header as line 1, as a spreadsheet numbers its rows. A file past
    the limits raises FileRefused as soon as that is known.
    """
    expected = HEADERS[name]
    csv.field_size_limit(FIELD_LIMIT)  # the process's setting: set here rather than trust what another module left
    reader = csv.reader(lines_of(stream, name))
    header = next(reader, None)
    if header is None:
        errors.add(LineError(1, "", "the file is empty: expected the header " + ",".join(expected), name))
        return
    header = [column.strip().lstrip("\ufeff") for column in header]
    missing = [column for column in expected if column not in header]
    extra = [column for column in header if column not in expected]
    for column in missing:
        errors.add(LineError(1, column, "missing column", name))
    for column in extra[:LISTED_COLUMNS]:
        errors.add(LineError(1, column, "unexpected column", name))
    if len(extra) > LISTED_COLUMNS:
        errors.add(LineError(1, "", f"and {len(extra) - LISTED_COLUMNS:,} more unexpected columns", name))
    if len(set(header)) != len(header):
        errors.add(LineError(1, "", "a column appears twice", name))
    if missing or extra or len(set(header)) != len(header):
        return
    order = [header.index(column) for column in expected]
    in_order = order == list(range(len(order)))
    width = len(header)
    for line, row in enumerate(reader, start=2):
        if line > limits.lines:
            raise too_many_lines(name, limits)
        if not row or row == [""]:
            continue
        if len(row) != width:
            errors.add(LineError(line, "", f"expected {width} cells, found {len(row)}", name))
            continue
        cells = row if in_order else [row[index] for index in order]
        yield line, [restore(cell) if cell[:1] == "'" else cell for cell in cells]
