"""The growth benchmark's databases: N customers with 90 days of history, loaded with PostgreSQL COPY.

The schema comes from the app's migrations; the rows are streamed from generators into COPY (never built as
lists), so 100,000 customers take minutes. Each customer is simulated from its own seeded random generator, so
the engagement pass and the health-history pass see the same days without keeping them in memory:

- customers over cohorts, statuses and industries, four in five with an owner, a few unsubscribed;
- onboarding with a realistic mix of steps done (each step's time after the one before) and blockers;
- engagement only on active days: none before the Action is installed, little for paused or churned
  customers, otherwise each customer's own share of active days, counts of a few issues and PRs a day;
- a health snapshot for each past day since signup (up to 89 days ago), worked out from that engagement with
  the default weights, as the daily recalculation would have written it (today's comes from the product);
- events (GitHub deliveries stored as received, some unmatched), feedback, tasks and notes, and the
  milestone emails of the steps done.

Serial ids of the COPYed tables are moved past the loaded rows, so the product's own inserts follow on.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import random
from pathlib import Path
from typing import Iterator

import psycopg

from portal.health.metrics import BLOCKER_TYPES, STEPS

DAYS = 90
SEED = 7
BATCH = 4000  # lines per write to COPY
NULL = r"\N"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "github"
COHORT_NAMES, COHORT_WEIGHTS = ("VIP", "Beta", "GA"), (1, 4, 5)
STATUS_NAMES, STATUS_WEIGHTS = ("active", "paused", "churned"), (8, 1, 1)
INDUSTRIES = ("SaaS", "Fintech", "Retail", "Health", "Media")
STEPS_DONE = (5, 10, 12, 13, 15, 45)  # weights of 0..5 steps done
BLOCKERS = [kind for kind in BLOCKER_TYPES if kind != "none"]
MILESTONES = ("welcome", "account_created", "github_action_installed", "first_issue_tagged", "first_pr_generated")
EMAIL_STATUSES = {"sent": 20, "delivered": 40, "opened": 25, "clicked": 8, "bounced": 3, "failed": 4}
COMMENTS = ("The pull requests land quickly and the fixes are clean.", "Setup took longer than expected.",
            "Great support from the team, the Action works well.", "Too many PRs get rejected by our reviewers.",
            "We love the automatic fixes but need better docs.", "Permissions were confusing at first.",
            "Merged most of the fixes without changes.", "The billing page is hard to find.")


def sql_time(moment: dt.datetime) -> str:
    return moment.isoformat(sep=" ")


class Customer:
    """One simulated customer: its profile, steps, and the active days of the last DAYS days.

    Days are numbered by their distance from today (0 today, 1 yesterday...), which is cheaper than dates."""

    def __init__(self, key: int, today: dt.date, owners: list[int]):
        rng = random.Random(SEED * 1_000_003 + key)
        self.key = key
        age = rng.randint(0, 365)
        self.age = age
        self.signup = today - dt.timedelta(days=age)
        self.cohort = rng.choices(COHORT_NAMES, COHORT_WEIGHTS)[0]
        self.status = rng.choices(STATUS_NAMES, STATUS_WEIGHTS)[0]
        self.industry = rng.choice(INDUSTRIES)
        self.team_size = min(500, int(rng.lognormvariate(2.2, 0.9)) + 1)
        self.owner = rng.choice(owners) if owners and rng.random() < 0.8 else None
        self.unsubscribed = rng.random() < 0.03
        self.done = min(rng.choices(range(6), STEPS_DONE)[0], 1 + age // 3)
        self.step_ages: list[int] = []  # the age of each step done, in days before today
        ago = age
        for _ in range(self.done):
            ago = max(0, ago - rng.choice((0, 0, 1, 2, 3, 5, 8)))
            self.step_ages.append(ago)
        self.step_days = [today - dt.timedelta(days=ago) for ago in self.step_ages]
        self.blocker = rng.choice(BLOCKERS) if self.done < 5 and rng.random() < 0.35 else "none"
        self.notes = "Asked for a call about the setup." if rng.random() < 0.2 else ""
        self.days: list[tuple[int, int, int, int, int, int]] = []  # (age, counts...) of active days, oldest first
        if self.done >= 3:
            share = rng.betavariate(2, 3) if self.status == "active" else 0.05 if self.status == "paused" else 0.02
            merge_rate = rng.uniform(0.3, 0.95)
            draw = rng.random
            for ago in range(min(self.step_ages[2], DAYS - 1), -1, -1):
                if draw() < share:
                    issues = 1 + int(rng.expovariate(0.8))
                    generated = merged = 0
                    for _ in range(issues):
                        if draw() < 0.7:
                            generated += 1
                            merged += draw() < merge_rate
                    self.days.append((ago, issues, generated, merged, generated - merged, int(draw() < 0.05)))
        self.rng = rng  # what follows (events, feedback, tasks, emails) draws on from here


def customers(count: int, today: dt.date, owners: list[int]) -> Iterator[Customer]:
    for key in range(1, count + 1):
        yield Customer(key, today, owners)


def nullable(value) -> str:
    return r"\N" if value is None else str(value)


def customer_lines(c: Customer, dates: list[str], now) -> Iterator[str]:
    stamp = sql_time(now)
    unsubscribed = sql_time(now - dt.timedelta(days=3)) if c.unsubscribed else NULL
    yield (f"{c.key}\tteam{c.key}@example.com\tOrg {c.key}\torg-{c.key}\t{c.signup}\t{c.cohort}\t{c.industry}\t"
           f"{c.team_size}\t{c.status}\t{nullable(c.owner)}\t{unsubscribed}\t{stamp}\t{stamp}\n")


CUSTOMER_COLUMNS = ("id", "email", "organization", "github_username", "signup_date", "cohort", "industry",
                    "team_size", "status", "owner_id", "unsubscribed_at", "created_at", "updated_at")
ONBOARDING_COLUMNS = ("id", "customer_id", *(column for step in STEPS for column in (step, f"{step}_at")),
                      "completed_date", "days_to_complete", "blocker_type", "notes", "updated_at")


def onboarding_lines(c: Customer, dates: list[str], now) -> Iterator[str]:
    stamp = sql_time(now)
    cells = []
    for index in range(len(STEPS)):
        if index < c.done:
            cells += ["t", f"{c.step_days[index]} 10:00:00+00"]
        else:
            cells += ["f", r"\N"]
    completed = c.step_days[-1] if c.done == 5 else None
    days = (completed - c.signup).days if completed else None
    yield (f"{c.key}\t{c.key}\t" + "\t".join(cells) +
           f"\t{nullable(completed)}\t{nullable(days)}\t{c.blocker}\t{c.notes}\t{stamp}\n")


ENGAGEMENT_COLUMNS = ("customer_id", "date", "issues_tagged", "prs_generated", "prs_merged", "prs_rejected",
                      "support_requests")


def engagement_lines(c: "Customer", dates: list[str], now) -> Iterator[str]:
    for ago, *counts in c.days:
        yield f"{c.key}\t{dates[ago]}\t" + "\t".join(map(str, counts)) + "\n"


SNAPSHOT_COLUMNS = ("customer_id", "date", "score", "status", "stage", "onboarding_component", "activity_component",
                    "success_component", "volume_component", "onboarding_percent", "days_active", "success_rate",
                    "prs_generated", "prs_merged", "settings_version", "calculated_at")


def hundredths(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


STAGE_BY_STEPS = ("new_signup", "new_signup", "onboarding", "onboarding", "initial_adoption", "regular_usage")


def band(score: int) -> str:
    return "champion" if score >= 85 else "healthy" if score >= 70 else "needs_attention" if score >= 50 else "at_risk"


BANDS = [band(score) for score in range(101)]
HUNDREDTHS = [hundredths(value) for value in range(3001)]


def snapshot_lines(c: "Customer", dates: list[str], now) -> Iterator[str]:
    """Each past day's snapshot from the simulated engagement, with the default weights (SPEC section 3), in
    hundredths so the truncation is exact: what the daily recalculation would have written that day."""
    by_age = {ago: counts for ago, *counts in c.days}
    window: list[int] = []
    generated = merged = 0
    prefix = f"{c.key}\t"
    churned = c.status == "churned"
    for ago in range(min(c.age, DAYS - 1), 0, -1):
        counts = by_age.get(ago)
        if counts:
            window.append(ago)
            generated += counts[1]
            merged += counts[2]
        while window and window[0] - ago >= 30:
            window.pop(0)
        steps = sum(done_ago >= ago for done_ago in c.step_ages)
        percent = steps * 20
        onboarding = 3000 if steps == 5 else percent * 30
        active = len(window)
        activity = min(active * 500, 3000)
        rate = merged * 100 // generated if generated else 0
        volume = min(generated * 200, 1500)
        score = (onboarding + activity + rate * 25 + volume) // 100
        day = dates[ago]
        yield (f"{prefix}{day}\t{score}\t{BANDS[score]}\t{'churned' if churned else STAGE_BY_STEPS[steps]}\t"
               f"{HUNDREDTHS[onboarding]}\t{HUNDREDTHS[activity]}\t{HUNDREDTHS[rate * 25]}\t{HUNDREDTHS[volume]}\t"
               f"{percent}\t{active}\t{rate}\t{generated}\t{merged}\t1\t{day} 01:05:00+00\n")


def escaped(text: str) -> str:
    """A value for COPY's text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@functools.cache
def payload_templates() -> list[tuple[str, str, str, str]]:
    """(event type, time path, payload text, its escaped form) of three real GitHub deliveries, written once with
    placeholders for the login and the time: each stored payload is the body as sent."""
    templates = []
    for name, event_type, path in (("issues.labeled", "issues.labeled", ("issue", "updated_at")),
                                   ("pull_request.opened", "pull_request.opened", ("pull_request", "created_at")),
                                   ("installation.created", "installation.created", ("installation", "created_at"))):
        payload = json.loads((FIXTURES / f"{name}.json").read_text())
        if "repository" in payload:
            payload["repository"]["owner"]["login"] = "@@LOGIN@@"
        payload.setdefault("installation", {}).setdefault("account", {})["login"] = "@@LOGIN@@"
        node = payload
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = "@@TIME@@"
        text = json.dumps(payload)
        templates.append((event_type, text, escaped(text)))
    return templates


EVENT_COLUMNS = ("source", "delivery_id", "event_type", "customer_id", "payload", "received_at", "outcome", "detail")


def event_lines(c: Customer, dates: list[str], now) -> Iterator[str]:
    """About one GitHub delivery for every two customers, received over the last DAYS days; one in twenty from an
    account no customer matches."""
    templates = payload_templates()
    for number in range(c.rng.choices((0, 1, 2), (6, 3, 1))[0]):
        event_type, _, template = c.rng.choices(templates, (6, 3, 1))[0]
        received = now - dt.timedelta(minutes=c.rng.randint(1, DAYS * 24 * 60))
        unmatched = c.rng.random() < 0.05
        login = f"unknown-{c.key}-{number}" if unmatched else f"org-{c.key}"
        payload = template.replace("@@LOGIN@@", login).replace("@@TIME@@", received.strftime("%Y-%m-%dT%H:%M:%SZ"))
        customer, outcome = (r"\N", "unmatched") if unmatched else (c.key, "processed")
        yield f"github\tseed-{c.key}-{number}\t{event_type}\t{customer}\t{payload}\t{sql_time(received)}\t{outcome}\t\n"


FEEDBACK_COLUMNS = ("customer_id", "nps", "csat", "comment", "feature_request", "bug_report", "source",
                    "recorded_by_id", "created_at")


def feedback_lines(c: Customer, dates: list[str], now) -> Iterator[str]:
    if c.rng.random() < 0.3:
        nps = c.rng.choices(range(11), (2, 1, 1, 2, 2, 3, 4, 8, 12, 14, 10))[0]
        csat = c.rng.randint(1, 5) if c.rng.random() < 0.5 else None
        comment = c.rng.choice(COMMENTS) if c.rng.random() < 0.6 else ""
        source = c.rng.choices(("survey", "call", "email", "support"), (5, 3, 1, 1))[0]
        created = now - dt.timedelta(minutes=c.rng.randint(1, DAYS * 24 * 60))
        yield (f"{c.key}\t{nps}\t{nullable(csat)}\t{comment}\t\t\t{source}\t{nullable(c.owner)}\t"
               f"{sql_time(created)}\n")


INTERVENTION_COLUMNS = ("customer_id", "kind", "title", "body", "due_date", "assignee_id", "status", "trigger",
                        "created_by_id", "created_at", "completed_at")


def intervention_lines(c: Customer, dates: list[str], now) -> Iterator[str]:
    """Call notes for about a third of the customers, and tasks for one in six: most open, some done or snoozed,
    due around today."""
    created = now - dt.timedelta(minutes=c.rng.randint(60, DAYS * 24 * 60))
    if c.rng.random() < 0.33:
        yield (f"{c.key}\tcall\tCall with Org {c.key}\tWalked through the setup and the first PRs.\t\\N\t"
               f"{nullable(c.owner)}\tdone\tperson\t{nullable(c.owner)}\t{sql_time(created)}\t{sql_time(created)}\n")
    if c.rng.random() < 0.17:
        status = c.rng.choices(("open", "done", "snoozed"), (6, 3, 1))[0]
        due = dt.date.fromisoformat(dates[0]) + dt.timedelta(days=c.rng.randint(-10, 14))
        completed = sql_time(created + dt.timedelta(days=1)) if status == "done" else r"\N"
        yield (f"{c.key}\ttask\tFollow up with Org {c.key}\tCheck the open blocker.\t{due}\t{nullable(c.owner)}\t"
               f"{status}\tperson\t{nullable(c.owner)}\t{sql_time(created)}\t{completed}\n")


EMAIL_COLUMNS = ("customer_id", "kind", "dedupe_key", "recipient", "subject", "channel", "status", "attempts",
                 "last_error", "payload", "body_text", "body_html", "queued_at", "sent_at", "updated_at")


def email_lines(c: Customer, dates: list[str], now) -> Iterator[str]:
    """The milestone email of each step done, sent when the step was reached, most delivered or opened."""
    from portal.emails.content import MILESTONE_SUBJECTS, milestone_key

    statuses = (list(EMAIL_STATUSES), list(EMAIL_STATUSES.values()))
    reached = list(zip(MILESTONES, c.step_days)) + ([("onboarding_completed", c.step_days[-1])] if c.done == 5 else [])
    for milestone, day in reached:
        status = c.rng.choices(*statuses)[0]
        sent = dt.datetime.combine(day, dt.time(10, 5), dt.timezone.utc)
        channel = "smtp" if c.rng.random() < 0.7 else "convertkit"
        error = "550 mailbox unavailable" if status == "failed" else ""
        text = escaped(f"Hello Org {c.key},\n\n{MILESTONE_SUBJECTS[milestone]}.\n\nThe early-access team")
        html = f"<p>Hello Org {c.key},</p><p>{MILESTONE_SUBJECTS[milestone]}.</p><p>The early-access team</p>"
        yield (f"{c.key}\tmilestone\t{milestone_key(c.key, milestone)}\tteam{c.key}@example.com\t"
               f"{MILESTONE_SUBJECTS[milestone]}\t{channel}\t{status}\t{1 + (status == 'failed') * 2}\t{error}\t"
               f'{{"milestone": "{milestone}"}}\t{text}\t{html}\t{sql_time(sent)}\t'
               f"{NULL if status == 'failed' else sql_time(sent)}\t{sql_time(sent)}\n")


TABLES = {  # table: (columns, lines of one customer); customers first, committed before the others
    "customers": (CUSTOMER_COLUMNS, customer_lines),
    "onboarding": (ONBOARDING_COLUMNS, onboarding_lines),
    "engagement": (ENGAGEMENT_COLUMNS, engagement_lines),
    "health_scores": (SNAPSHOT_COLUMNS, snapshot_lines),
    "events": (EVENT_COLUMNS, event_lines),
    "feedback": (FEEDBACK_COLUMNS, feedback_lines),
    "interventions": (INTERVENTION_COLUMNS, intervention_lines),
    "email_notifications": (EMAIL_COLUMNS, email_lines),
}


# Bulk-loaded as pg_restore does: without these tables' secondary indexes, which are then built again from their
# own definitions (each in one sort, not row by row), and with the load's sessions in replica mode, which skips the
# per-row foreign-key triggers (every row's keys exist by construction). The schema left is the migrations' own.
REINDEXED = ("engagement", "health_scores")
SECONDARY = """SELECT i.indexrelid::regclass::text, c.conname, pg_get_indexdef(i.indexrelid),
    CASE WHEN c.oid IS NOT NULL THEN pg_get_constraintdef(c.oid) END
FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype = 'u'
WHERE i.indrelid = %s::regclass AND NOT i.indisprimary"""


def drop_secondary_indexes(connection: psycopg.Connection, table: str) -> list[str]:
    """Drop the table's secondary indexes (and the unique constraints they back); the statements that restore them."""
    restore = []
    for index, constraint, index_definition, constraint_definition in connection.execute(SECONDARY, (table,)).fetchall():
        if constraint:
            connection.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraint_definition}')
        else:
            connection.execute(f"DROP INDEX {index}")
            restore.append(index_definition)
    return restore


def load(libpq: str, count: int, today: dt.date, owners: list[int], now: dt.datetime) -> dict[str, int]:
    """COPY the customers and commit them; then every other table in one pass over the customers, each into its
    own COPY on its own connection (one simulation of each customer serves every table). Then rebuild the
    indexes left out and move the serial ids past the rows. Returns {table: rows}."""
    dates = [(today - dt.timedelta(days=ago)).isoformat() for ago in range(DAYS)]
    rows = dict.fromkeys(TABLES, 0)
    with psycopg.connect(libpq) as connection:
        restore = [statement for table in REINDEXED for statement in drop_secondary_indexes(connection, table)]
    first, *others = TABLES
    for group in ([first], others):
        with contextlib.ExitStack() as stack:
            streams = {}
            for table in group:
                connection = stack.enter_context(psycopg.connect(libpq))
                connection.execute("SET session_replication_role = replica")
                columns, _ = TABLES[table]
                streams[table] = stack.enter_context(
                    connection.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN"))
            buffers = {table: [] for table in group}
            for c in customers(count, today, owners):
                for table in group:
                    buffer = buffers[table]
                    buffer.extend(TABLES[table][1](c, dates, now))
                    if len(buffer) >= BATCH:
                        streams[table].write("".join(buffer))
                        rows[table] += len(buffer)
                        buffer.clear()
            for table in group:
                streams[table].write("".join(buffers[table]))
                rows[table] += len(buffers[table])
        # leaving the stack ends each COPY and commits its connection
    with psycopg.connect(libpq) as connection:
        connection.execute("SET maintenance_work_mem = '256MB'")
        for statement in restore:
            connection.execute(statement)
        for table in ("customers", "onboarding"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    return rows
