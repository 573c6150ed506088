"""What the database must hold after a run of tests/traffic.py, read with plain SQL: every acknowledged (2xx) event
stored once, nothing stored that was not acknowledged, the engagement counts exactly those the distinct
acknowledged events add, a customer per signup, "account created" ticked where an event said so; and what the
answers must have been: each event processed once, every second send from the same sender a duplicate, no 500.
"""
from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text

from .traffic import TODAY, Seeded, Traffic

COUNTS = ("issues_tagged", "prs_generated", "prs_merged", "prs_rejected")


@dataclass
class Findings:
    acknowledged: int = 0
    stored: int = 0
    duplicates: int = 0  # answers 200 duplicate
    lost: int = 0  # acknowledged, not stored
    problems: list[str] = field(default_factory=list)


@dataclass
class Stored:
    events: collections.Counter  # (source, delivery id): rows
    outcomes: collections.Counter  # of those rows
    counts: dict  # (login, day or TODAY, count): total
    emails: set[str]
    ticked: set[str]  # logins whose "account created" is ticked


def expected_counts(deliveries) -> dict[tuple[str, object, str], int]:
    expected: collections.Counter = collections.Counter()
    for delivery in deliveries:
        for column in delivery.counts:
            expected[delivery.login, delivery.day, column] += 1
    return dict(expected)


def read(database_url: str, days: set) -> Stored:
    """The database's side; counts on days other than `days` (the GitHub payloads') go to the TODAY bucket."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            events = connection.execute(text("SELECT source, delivery_id, outcome FROM events")).all()
            sums = connection.execute(text(
                f"SELECT c.github_username, e.date, {', '.join(f'sum(e.{column})' for column in COUNTS)}"
                " FROM engagement e JOIN customers c ON c.id = e.customer_id GROUP BY c.github_username, e.date"))
            counts: collections.Counter = collections.Counter()
            for login, day, *totals in sums:
                day = dt.date.fromisoformat(day) if isinstance(day, str) else day
                for column, total in zip(COUNTS, totals):
                    if total:
                        counts[login, day if day in days else TODAY, column] += int(total)
            emails = {email.lower() for email in connection.execute(text("SELECT email FROM customers")).scalars()}
            ticked = set(connection.execute(text(
                "SELECT c.github_username FROM customers c JOIN onboarding o ON o.customer_id = c.id"
                " WHERE o.account_created")).scalars())
    finally:
        engine.dispose()
    return Stored(collections.Counter((source, delivery_id) for source, delivery_id, _ in events),
                  collections.Counter(outcome for *_, outcome in events), dict(counts), emails, ticked)


def check(database_url: str, traffic: Traffic, seeded: list[Seeded]) -> Findings:
    """The database against what the senders were told; every difference is one line of `problems`."""
    planned = {delivery.key: delivery for batch in traffic.batches for delivery in batch}
    days = {delivery.day for delivery in planned.values() if isinstance(delivery.day, dt.date)}
    stored = read(database_url, days)
    acknowledged = traffic.acknowledged
    findings = Findings(len(acknowledged), len(stored.events), traffic.outcomes["duplicate"],
                        len(acknowledged.keys() - stored.events.keys()))
    findings.problems = (events_problems(findings, stored, traffic, planned) + effects_problems(stored, traffic, seeded)
                         + answers_problems(traffic))
    return findings


def events_problems(findings: Findings, stored: Stored, traffic: Traffic, planned: dict) -> list[str]:
    problems, acknowledged = [], traffic.acknowledged
    if findings.lost:
        problems.append(f"{findings.lost} acknowledged events are not stored")
    if twice := sum(1 for rows in stored.events.values() if rows > 1):
        problems.append(f"{twice} events are stored more than once")
    if extra := len(stored.events.keys() - acknowledged.keys()):
        problems.append(f"{extra} events are stored that were never acknowledged")
    if missing := len(planned.keys() - acknowledged.keys()):
        problems.append(f"{missing} planned events were never acknowledged")
    if set(stored.outcomes) - {"processed"}:
        problems.append(f"events stored with outcomes other than processed: {dict(stored.outcomes)}")
    return problems


def effects_problems(stored: Stored, traffic: Traffic, seeded: list[Seeded]) -> list[str]:
    problems, acknowledged = [], traffic.acknowledged.values()
    expected = expected_counts(acknowledged)
    if stored.counts != expected:
        wrong = sorted(str((*key, stored.counts.get(key, 0), expected.get(key, 0)))
                       for key in stored.counts.keys() | expected.keys()
                       if stored.counts.get(key, 0) != expected.get(key, 0))
        problems.append(f"engagement counts differ (login, day, count, stored, expected): {', '.join(wrong[:5])}")
    signups = {delivery.signup.lower() for delivery in acknowledged if delivery.signup}
    if not_created := signups - stored.emails:
        problems.append(f"{len(not_created)} acknowledged signups created no customer")
    if len(stored.emails) != len(seeded) + len(signups):
        problems.append(f"{len(stored.emails)} customers, expected {len(seeded)} seeded + {len(signups)} signed up")
    should_tick = {delivery.login for delivery in acknowledged if delivery.ticks_account}
    if stored.ticked != should_tick:
        problems.append(f"account created ticked for {sorted(stored.ticked)}, expected {sorted(should_tick)}")
    return problems


def answers_problems(traffic: Traffic) -> list[str]:
    problems = []
    if twice := sum(1 for answers in traffic.processed.values() if answers > 1):
        problems.append(f"{twice} events were answered processed more than once")
    # An event whose first attempt was committed but not answered (a crash, a connection cut) answers duplicate when
    # it is sent again: only as many as there were such attempts.
    never = sum(1 for key in traffic.acknowledged if not traffic.processed[key])
    if never > traffic.no_answer + traffic.statuses[503] + traffic.statuses[409]:
        problems.append(f"{never} events were never answered processed")
    if traffic.resent["duplicate"] != sum(traffic.resent.values()):
        problems.append(f"second sends answered {dict(traffic.resent)}, all should be duplicate")
    if traffic.statuses[500]:
        problems.append(f"{traffic.statuses[500]} answers were 500")
    if traffic.without_retry_after:
        problems.append(f"{traffic.without_retry_after} answers 503 had no Retry-After or no JSON error")
    return problems + traffic.unexpected[:5]
