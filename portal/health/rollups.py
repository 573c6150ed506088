"""Daily rollups: each day's figures over that day's snapshots, kept current as the snapshots change.

A day's rollup is a handful of measures (health_rollups rows): how many customers have a snapshot that day, the
sum of their scores, the count in each band and stage, the count with each onboarding step done, with each
risk signal raised and with each blocker, and the sum and count of the days to complete. Every recalculation adds to it what it changed (the new snapshot's measures minus the one it
replaced), so the dashboard and the trends read a few rows whatever the number of customers.

The additions of a transaction are gathered in the session and written just before it commits, each row in the
same order: concurrent recalculations then hold a rollup row only while committing, and never wait on each other
in a cycle. rebuild() recounts a day from its snapshots (after a migration, a backfill, or to check).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Iterable, Mapping

from sqlalchemy import Date, and_, delete, func, literal_column, select, type_coerce
from sqlalchemy import event
from sqlalchemy.orm import Session, aliased

from ..extensions import db
from ..models import HealthRollup, HealthScore
from ..sql import dialect, upsert
from . import metrics, risk

PENDING = "portal.rollup_changes"
# A day's band migration is from the band of the snapshot this many days before (the analytics page's).
MIGRATION_DAYS = 30
NO_SNAPSHOT = "no_snapshot"  # the band of a customer without a snapshot that day, in `moved:` measures
COMPLETE_STEPS = (1 << len(metrics.STEPS)) - 1
CHURNED_AT_RISK = "at_risk:churned"  # of band:at_risk, the churned customers (migration 0029)


def step_mask(steps: Mapping[str, bool]) -> int:
    return sum(1 << index for index, step in enumerate(metrics.STEPS) if steps[step])


def signal_mask(kinds: Iterable[str]) -> int:
    return sum(1 << risk.KINDS.index(kind) for kind in set(kinds))


def kinds_of(mask: int) -> list[str]:
    return [kind for index, kind in enumerate(risk.KINDS) if mask & (1 << index)]


def measures(score: int, band: str, stage: str, steps: int, signals: int, blocker: str | None = None,
             days_to_complete: int | None = None, customers: int = 1, *, then: str | None = None) -> Counter:
    """What `customers` snapshots with these values add to their day's rollup. Signals count only for customers
    not churned, as the dashboard shows them, and the churned at risk are also counted on their own; a blocker
    (other than "none") and the days to complete count when the snapshot has them (older ones do not). `then`:
    the band of the customer's snapshot MIGRATION_DAYS before (None: none), counted as the move from it to this
    band (`moved:<then>:<band>`)."""
    found = Counter({"customers": customers, "score_total": score * customers, f"band:{band}": customers,
                     f"stage:{stage}": customers, f"moved:{then or NO_SNAPSHOT}:{band}": customers})
    if blocker not in (None, "none"):
        found[f"blocker:{blocker}"] += customers
    if days_to_complete is not None:
        found["completion_days"] += days_to_complete * customers
        found["completions_timed"] += customers
    for index, step in enumerate(metrics.STEPS):
        if steps & (1 << index):
            found[f"step:{step}"] += customers
    if steps == COMPLETE_STEPS:
        found["completed"] += customers
    if band == "at_risk" and stage == "churned":  # counted apart: a churned customer is not at risk of churning
        found[CHURNED_AT_RISK] += customers
    if signals and stage != "churned":
        found["signalled"] += customers
        for kind in kinds_of(signals):
            found[f"signal:{kind}"] += customers
    return found


# What a snapshot adds to its day's rollup, in the order of measures()' arguments.
SNAPSHOT_KEY = ("score", "status", "stage", "steps", "signals", "blocker", "days_to_complete")


def record(day: dt.date, old: Mapping | None, new: Mapping, then: str | None) -> None:
    """Note in the session that a snapshot of `day` went from `old` (None: there was none) to `new`; both hold
    score, status, stage, steps, signals, blocker and days_to_complete; `then` is the band of the customer's
    snapshot MIGRATION_DAYS before `day` (None: none). Written when the transaction commits.

    Noted as how many snapshots of each kind (alike in all of these) came and went: a batch's 500 snapshots are a
    few hundred kinds, worked out into measures once each at commit rather than once per snapshot."""
    changes = db.session.info.setdefault(PENDING, Counter())
    changes[(day, then, *(new.get(name) for name in SNAPSHOT_KEY))] += 1
    if old is not None:
        changes[(day, then, *(old.get(name) for name in SNAPSHOT_KEY))] -= 1


@event.listens_for(Session, "before_commit")
def write_changes(session: Session) -> None:
    changes = session.info.pop(PENDING, None)
    if not changes:
        return
    totals: Counter = Counter()
    for (day, then, *values), count in changes.items():
        if count:
            for measure, value in measures(*values, customers=count, then=then).items():
                totals[(day, measure)] += value
    rows = [{"date": day, "measure": measure, "value": value}
            for (day, measure), value in sorted(totals.items()) if value]
    if rows:
        upsert(HealthRollup.__table__, rows, ("date", "measure"), add=("value",))


@event.listens_for(Session, "after_rollback")
def forget_changes(session: Session) -> None:
    session.info.pop(PENDING, None)


def day(on: dt.date) -> Counter:
    """The measures of one day (a missing measure is 0), with this transaction's changes."""
    write_changes(db.session())
    return Counter(dict(db.session.execute(
        select(HealthRollup.measure, HealthRollup.value).where(HealthRollup.date == on)).all()))


def days(first: dt.date, last: dt.date, names: Iterable[str]) -> dict[dt.date, Counter]:
    """Some measures of each day from first to last that has a rollup, with this transaction's changes."""
    write_changes(db.session())
    found: dict[dt.date, Counter] = {}
    for on, measure, value in db.session.execute(
            select(HealthRollup.date, HealthRollup.measure, HealthRollup.value)
            .where(HealthRollup.date.between(first, last), HealthRollup.measure.in_(list(names)))):
        found.setdefault(on, Counter())[measure] = value
    return found


def counted(first: dt.date | None = None, last: dt.date | None = None) -> dict[dt.date, Counter]:
    """The rollups of the days from first to last (every day when None) counted afresh from their snapshots, in
    one grouped query: snapshots alike in band, stage, steps, signals, blocker, days to complete and band
    MIGRATION_DAYS before are counted together."""
    earlier = aliased(HealthScore)
    alike = (HealthScore.date, HealthScore.status, HealthScore.stage, HealthScore.steps, HealthScore.signals,
             HealthScore.blocker, HealthScore.days_to_complete, earlier.status)
    query = (select(*alike, func.count(), func.sum(HealthScore.score))
             .outerjoin(earlier, and_(earlier.customer_id == HealthScore.customer_id,
                                      earlier.date == days_before(HealthScore.date, MIGRATION_DAYS)))
             .group_by(*alike))
    if first is not None:
        query = query.where(HealthScore.date >= first)
    if last is not None:
        query = query.where(HealthScore.date <= last)
    found: dict[dt.date, Counter] = {}
    for on, band, stage, steps, signals, blocker, days, then, count, total in db.session.execute(query):
        day_measures = found.setdefault(on, Counter())
        day_measures.update(measures(0, band, stage, steps, signals, blocker, days, count, then=then))
        day_measures["score_total"] += int(total)
    return found


def days_before(day_column, days: int):
    """The day `days` before a date column, as SQL on either database."""
    if dialect() == "postgresql":
        return day_column - literal_column(str(int(days)))
    return type_coerce(func.date(day_column, f"-{int(days)} days"), Date)


def rebuild(first: dt.date | None = None, last: dt.date | None = None) -> int:
    """Replace the rollups of the days from first to last (every day when None) by a count of their snapshots;
    returns how many days. The caller commits."""
    db.session.info.pop(PENDING, None)
    recount = counted(first, last)
    removal = delete(HealthRollup)
    if first is not None:
        removal = removal.where(HealthRollup.date >= first)
    if last is not None:
        removal = removal.where(HealthRollup.date <= last)
    db.session.execute(removal)
    rows = [{"date": on, "measure": measure, "value": value}
            for on, day_measures in sorted(recount.items()) for measure, value in sorted(day_measures.items()) if value]
    for start in range(0, len(rows), 5000):
        db.session.execute(HealthRollup.__table__.insert(), rows[start:start + 5000])
    return len(recount)


def rebuild_all() -> int:
    return rebuild()
