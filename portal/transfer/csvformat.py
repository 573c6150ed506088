"""The CSV files' headers, cells and line errors; pure, no Flask or database."""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import IO, Iterator

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


class ImportRejected(Exception):
    """A file with bad lines: nothing was imported."""

    def __init__(self, errors: list[LineError]):
        self.errors = sorted(errors, key=lambda error: (error.file, error.line, error.column))
        super().__init__(f"{len(self.lines())} bad line(s); nothing was imported")

    def lines(self) -> list[str]:
        """One entry per bad line, with all of its problems: `customers.csv line 4: email: ...; team_size: ...`."""
        grouped: dict[str, list[str]] = {}
        for error in self.errors:
            grouped.setdefault(error.where, []).append(error.problem)
        return [f"{where}: {'; '.join(problems)}" for where, problems in grouped.items()]


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def restore(text: str) -> str:
    """Undo cell()'s neutralising quote."""
    if text.startswith("'") and text[1:2] and text[1] in FORMULA_STARTS:
        return text[1:]
    return text


def writer(stream: IO[str]):
    return csv.writer(stream, lineterminator="\n")


def read(name: str, stream: IO[str], errors: list[LineError]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, restored cells) in header order; header problems go to errors.

    Lines are counted as records with the header as line 1, as a spreadsheet numbers its rows.
    """
    expected = HEADERS[name]
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        errors.append(LineError(1, "", "the file is empty: expected the header " + ",".join(expected), name))
        return
    header = [column.strip().lstrip("\ufeff") for column in header]
    missing = [column for column in expected if column not in header]
    extra = [column for column in header if column not in expected]
    errors.extend(LineError(1, column, "missing column", name) for column in missing)
    errors.extend(LineError(1, column, "unexpected column", name) for column in extra)
    if len(set(header)) != len(header):
        errors.append(LineError(1, "", "a column appears twice", name))
    if missing or extra or len(set(header)) != len(header):
        return
    order = [header.index(column) for column in expected]
    in_order = order == list(range(len(order)))
    width = len(header)
    for line, row in enumerate(reader, start=2):
        if not row or row == [""]:
            continue
        if len(row) != width:
            errors.append(LineError(line, "", f"expected {width} cells, found {len(row)}", name))
            continue
        cells = row if in_order else [row[index] for index in order]
        yield line, [restore(cell) if cell[:1] == "'" else cell for cell in cells]
