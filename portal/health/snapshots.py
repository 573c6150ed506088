"""Health snapshots: today's score per customer, recalculated with a few set-based queries."""
from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Iterable, Iterator

from flask import current_app
from sqlalchemy import ARRAY, Integer, Select, and_, any_, bindparam, func, literal_column, or_, select

from .. import clock, sql
from ..extensions import db
from ..models import AppSetting, Customer, Engagement, HealthCurrent, HealthScore, HealthSettings, Onboarding, utcnow
from ..sql import upsert
from . import metrics, risk, rollups

COMPLETED_ON = "health_completed_on"
# What tells a recalculation that a snapshot comes out as stored, and then nothing is written: with the same
# settings version, the components, the onboarding percent and the success rate follow from these. They hold what
# a snapshot adds to its day's rollup (rollups.SNAPSHOT_KEY).
VALUES = ("score", "status", "stage", "steps", "signals", "blocker", "days_to_complete", "days_active",
          "prs_generated", "prs_merged", "settings_version")


NEWEST_SETTINGS = select(HealthSettings).order_by(HealthSettings.version.desc()).limit(1)


def current_settings() -> HealthSettings:
    """The newest version of the health settings, created with the SPEC defaults if none exists."""
    settings = db.session.scalars(NEWEST_SETTINGS).first()
    if settings is None:
        settings = HealthSettings(version=1, **vars(metrics.Weights()))
        db.session.add(settings)
        db.session.flush()
    return settings


def weights_of(settings: HealthSettings) -> metrics.Weights:
    return metrics.Weights(**{name: getattr(settings, name) for name in metrics.Weights.__dataclass_fields__})


def inputs_query(today: dt.date, window_days: int, customer_ids: Iterable[int] | None = None) -> Select:
    """One row per customer with everything the score needs (steps, PR totals up to today, active days) and the
    facts the risk signals are told from."""
    ids = list(customer_ids) if customer_ids is not None else None
    return inputs_statement(scope_of(ids), sql.dialect()).params(inputs_params(today, window_days, ids))


def scope_of(customer_ids: list[int] | None) -> str:
    if customer_ids is None:
        return "all"
    return "one" if len(customer_ids) == 1 else "some"


def inputs_params(today: dt.date, window_days: int, customer_ids: list[int] | None) -> dict:
    params = {"today": today, "first_day": metrics.window_start(today, window_days), **risk.facts_params(today),
              "month_before": today - dt.timedelta(days=rollups.MIGRATION_DAYS)}
    scope = scope_of(customer_ids)
    if scope == "one":
        params["customer_id"] = customer_ids[0]
    elif scope == "some":
        params.update(customer_ids=customer_ids, first_id=min(customer_ids), last_id=max(customer_ids))
    return params


def among(column, scope: str, dialect_name: str):
    """The condition that column is one of the chosen customers: :customer_id, or :customer_ids within
    :first_id..:last_id. The range lets PostgreSQL, short of statistics, read a batch through the primary key rather
    than every customer (an IN list of 500 looked dearer than a pass over the table). On PostgreSQL the ids are one
    array parameter (`= ANY`): 500 placeholders made a statement psycopg translated again on every batch, and
    planned again for the new values."""
    if scope == "one":
        return column == bindparam("customer_id")
    if dialect_name == "postgresql":
        chosen = column == any_(bindparam("customer_ids", type_=ARRAY(Integer)))
    else:
        chosen = column.in_(bindparam("customer_ids", expanding=True))
    return and_(column.between(bindparam("first_id"), bindparam("last_id")), chosen)


@functools.cache
def total_figures() -> tuple[risk.Figure, ...]:
    """What the score reads from a customer's engagement: the totals up to today and the active days of the
    window."""
    engagement = Engagement.__table__.c
    to_date = engagement.date <= bindparam("today")
    any_count = or_(*(engagement[count] > sql.ZERO for count in Engagement.COUNTS))
    return (*(risk.Figure(name, func.sum, engagement[name], (to_date,))
              for name in ("issues_tagged", "prs_generated", "prs_merged")),
            risk.Figure("days_active", func.count, literal_column("1"),
                        (to_date, engagement.date >= bindparam("first_day"), any_count)))


# Counts that reach a snapshot only by making a day active: the score counts a day with any count (days_active),
# the inactivity rule a day with issues tagged or PRs generated (risk.engagement_figures); neither adds them up.
ACTIVE_DAY_ONLY = frozenset({"issues_tagged", "support_requests"})


def moves_snapshot(added: dict[str, int], after) -> bool:
    """Whether adding `added` to a day's engagement, which then holds `after` (its counts), can change the
    customer's snapshot. It cannot when it adds only ACTIVE_DAY_ONLY counts to a day that already had issues tagged
    or PRs generated: active for the score and for the inactivity rule before and after. Most GitHub deliveries are
    such (an issue tagged on a day already active), and then nobody's health is worked out again for them."""
    counts = {name for name, value in added.items() if value}
    if not counts or not counts <= ACTIVE_DAY_ONLY:
        return True
    had_issues = after.issues_tagged - added.get("issues_tagged", 0) > 0
    return not (had_issues or after.prs_generated > 0)


def engagement_columns(scope: str, dialect_name: str) -> tuple[list, object | None]:
    """The columns of each customer's engagement figures (the totals, and for a recalculation the risk rules'
    too), and the subquery grouped by customer to outer-join for them.

    For everyone (the export), one pass over the rows up to today. For one customer or a batch, one pass over their
    rows for every figure, through uq_engagement_customer_date: the ids' range beside the ids lets PostgreSQL, short
    of statistics (right after a load or a day's writes), read just those customers' rows rather than the table."""
    totals = total_figures()
    figures = totals + (risk.engagement_figures() if scope != "all" else ())
    engagement = Engagement.__table__.c
    grouped = (select(engagement.customer_id, *(figure.of_group().label(figure.name) for figure in figures))
               .group_by(engagement.customer_id))
    if scope != "all":
        grouped = grouped.where(among(engagement.customer_id, scope, dialect_name))
    else:
        grouped = grouped.where(engagement.date <= bindparam("today"))
    grouped = grouped.subquery("figures")
    columns = [func.coalesce(grouped.c[figure.name], sql.ZERO).label(figure.name) for figure in totals]
    return columns + [grouped.c[figure.name] for figure in figures[len(totals):]], grouped


@functools.cache
def inputs_statement(scope: str, dialect_name: str) -> Select:
    """inputs_query with its values as parameters, for "all" customers, "one" or "some" (see inputs_params).
    Built once, on the tables' columns: a webhook delivery runs it for one customer, and building, expanding and
    ORM-loading it cost more than running it."""
    customers, onboarding = Customer.__table__, Onboarding.__table__
    figures_columns, figures = engagement_columns(scope, dialect_name)
    # The customer's snapshot of today as it stands, and the day of their current row: what a recalculation
    # replaces (the rollup takes the difference) and whether it moves the current row; and the band of their
    # snapshot MIGRATION_DAYS before, which the rollup counts the move from.
    stored, current = HealthScore.__table__.alias("stored"), HealthCurrent.__table__
    earlier = HealthScore.__table__.alias("earlier")
    query = (
        select(
            customers.c.id,
            customers.c.status,
            customers.c.signup_date,
            *(onboarding.c[step] for step in metrics.STEPS),
            onboarding.c.blocker_type,
            onboarding.c.days_to_complete,
            onboarding.c.updated_at.label("onboarding_updated_at"),
            *figures_columns,
            # A recalculation's (its engagement figures come with the totals); the export needs none.
            *(risk.fact_columns(engagement=False) if scope != "all" else ()),
            stored.c.customer_id.label("stored"),
            *(stored.c[name].label(f"stored_{name}") for name in VALUES),
            current.c.date.label("current_date"),
            earlier.c.status.label("band_then"),
        )
        .select_from(customers)
        .outerjoin(onboarding, onboarding.c.customer_id == customers.c.id)
        .outerjoin(stored, and_(stored.c.customer_id == customers.c.id, stored.c.date == bindparam("today")))
        .outerjoin(current, current.c.customer_id == customers.c.id)
        .outerjoin(earlier, and_(earlier.c.customer_id == customers.c.id,
                                 earlier.c.date == bindparam("month_before")))
    )
    if figures is not None:
        query = query.outerjoin(figures, figures.c.customer_id == customers.c.id)
    if scope != "all":
        query = query.where(among(customers.c.id, scope, dialect_name))
    return query if scope == "one" else query.order_by(customers.c.id)


def steps_of(row) -> dict[str, bool]:
    return {step: bool(getattr(row, step)) for step in metrics.STEPS}


def assess(row, weights: metrics.Weights) -> tuple[metrics.Health, dict[str, bool]]:
    steps = steps_of(row)
    result = metrics.health(sum(steps.values()), int(row.days_active), int(row.prs_generated), int(row.prs_merged), weights)
    return result, steps


# Customers recalculated together: each batch locks its customers, writes their snapshots and commits when the
# health job runs, so a webhook for one of them waits for a batch rather than for everyone.
BATCH = 500


def recalculate(customer_ids: Iterable[int] | None = None, today: dt.date | None = None,
                settings: HealthSettings | None = None, commit_each: bool = False,
                portal_settings: dict | None = None, rest: float = 0.0, moving: bool = False) -> int:
    """Upsert today's health_scores row for the given customers (all when None), with their current row and the
    day's rollup; returns how many. Customers go in batches of BATCH; with commit_each every batch is committed
    (the health job), otherwise the caller commits once. rest: after each committed batch, pause for this share
    of the time the batch took, so that the requests served meanwhile (webhooks, pages) get the cores and the
    database back between batches.

    settings: current_settings() read earlier by a caller that holds row locks meanwhile; portal_settings: the
    portal's settings (the risk thresholds) when the caller has them; moving: the caller's change may well move
    the snapshot (a delivery that passed moves_snapshot), so a single customer is locked before it is read rather
    than read first (see recalculate_batch).
    """
    today = today or clock.today()
    settings = settings or current_settings()
    weights = weights_of(settings)
    done = 0
    for batch in batches(customer_ids):
        started = time.monotonic()
        done += recalculate_batch(batch, today, settings, weights, portal_settings, moving)
        if commit_each:
            db.session.commit()
            if rest:
                time.sleep(rest * (time.monotonic() - started))
    if customer_ids is None:
        upsert(AppSetting.__table__, [{"key": COMPLETED_ON, "value": today.isoformat(), "updated_at": utcnow(),
                                       "updated_by": "health"}], ["key"], replace=["value", "updated_at"])
        if commit_each:
            db.session.commit()
    return done


def batches(customer_ids: Iterable[int] | None) -> Iterator[list[int]]:
    """The customers in batches of BATCH: the given ones, or every customer in id order (read a batch at a time,
    so customers added meanwhile are included)."""
    if customer_ids is not None:
        ids = sorted(set(customer_ids))
        for start in range(0, len(ids), BATCH):
            yield ids[start:start + BATCH]
        return
    last = 0
    while True:
        batch = db.session.scalars(select(Customer.id).where(Customer.id > last).order_by(Customer.id)
                                   .limit(BATCH)).all()
        if not batch:
            return
        yield batch
        last = batch[-1]


def lock(ids: list[int]) -> None:
    """Lock the customers (FOR NO KEY UPDATE: inserts that refer to them go on) before reading their inputs and
    today's snapshot, so that of two recalculations of a customer the second reads what the first wrote: the
    rollup takes the difference from it. SQLite has one writer at a time and needs no lock."""
    if sql.dialect() == "postgresql":
        db.session.execute(lock_statement(scope_of(ids)), inputs_params(clock.today(), 1, ids))


@functools.cache
def lock_statement(scope: str) -> Select:
    customers = Customer.__table__.c
    return (select(customers.id).where(among(customers.id, scope, "postgresql")).order_by(customers.id)
            .with_for_update(key_share=True))


def recalculate_batch(ids: list[int], today: dt.date, settings: HealthSettings, weights: metrics.Weights,
                      portal_settings: dict | None = None, moving: bool = False) -> int:
    """Recalculate these customers' snapshots of today under their lock (see lock). One customer's (an edit's),
    unless `moving`, is first read without it: many edits move no input of the score, and then nothing is locked
    or written. That read cannot miss what a concurrent recalculation of the customer is writing: a change that
    leaves the inputs as they stand leaves them so whatever else that recalculation counts, and any other change
    is read again under the lock. A delivery that cannot move the snapshot is not recalculated at all
    (moves_snapshot); one that may is `moving`, and locks first rather than read twice."""
    portal_settings = portal_settings or risk.settings.current()
    read_first = len(ids) == 1 and not moving and sql.dialect() == "postgresql"
    if not read_first:
        lock(ids)
    done, changed = worked_out(ids, today, settings, weights, portal_settings)
    if changed and read_first:
        lock(ids)
        done, changed = worked_out(ids, today, settings, weights, portal_settings)
    write(today, changed)
    return done


def worked_out(ids: list[int], today: dt.date, settings: HealthSettings, weights: metrics.Weights,
               portal_settings: dict) -> tuple[int, list]:
    """How many of the customers were read, and (input row, new snapshot, signal kinds) of those whose snapshot
    of today changes."""
    calculated_at = utcnow()
    changed, done = [], 0
    statement = inputs_statement(scope_of(ids), sql.dialect())
    for row in db.session.execute(statement, inputs_params(today, weights.window_days, ids)):
        done += 1
        result, steps = assess(row, weights)
        kinds = [signal.kind for signal in risk.raised(row, today, portal_settings)]
        snapshot = {
            "customer_id": row.id,
            "date": today,
            "score": result.score,
            "status": result.status,
            "stage": metrics.lifecycle_stage(steps, row.status),
            "onboarding_component": result.onboarding,
            "activity_component": result.activity,
            "success_component": result.success,
            "volume_component": result.volume,
            "onboarding_percent": metrics.onboarding_percent(sum(steps.values())),
            "days_active": int(row.days_active),
            "success_rate": metrics.success_rate(int(row.prs_merged), int(row.prs_generated)),
            "prs_generated": int(row.prs_generated),
            "prs_merged": int(row.prs_merged),
            "settings_version": settings.version,
            "calculated_at": calculated_at,
            "steps": rollups.step_mask(steps),
            "signals": rollups.signal_mask(kinds),
            "blocker": row.blocker_type,
            "days_to_complete": row.days_to_complete,
        }
        if not (row.stored and row.current_date == today and unchanged(row, snapshot)):
            changed.append((row, snapshot, kinds))
    return done, changed


def write(today: dt.date, changed: list) -> None:
    """The changed snapshots, their rollup changes and the current rows they move (a recalculation of an earlier
    day leaves a later day's current row as it is)."""
    rows, current = [], []
    for row, snapshot, kinds in changed:
        rows.append(snapshot)
        stored = {name: getattr(row, f"stored_{name}") for name in rollups.SNAPSHOT_KEY} if row.stored else None
        rollups.record(today, stored, snapshot, row.band_then)
        if row.current_date is None or row.current_date <= today:
            current.append({"customer_id": row.id, "date": today, "score": snapshot["score"],
                            "band": snapshot["status"], "stage": snapshot["stage"], "signals": snapshot["signals"],
                            "signal_count": len(set(kinds))})
    keys = ("customer_id", "date")
    if rows:
        upsert(HealthScore.__table__, rows, keys, replace=[name for name in rows[0] if name not in keys])
    if current:
        upsert(HealthCurrent.__table__, current, ("customer_id",),
               replace=("date", "score", "band", "stage", "signals", "signal_count"))


def unchanged(row, snapshot: dict) -> bool:
    """Whether today's stored snapshot (the row's stored_ columns) already has the snapshot's values: most webhook
    deliveries (an issue tagged) move no input of the score, and then write nothing."""
    return all(getattr(row, f"stored_{name}") == snapshot[name] for name in VALUES)


def refresh(today: dt.date | None = None) -> int:
    """The health job: recalculate the customers whose snapshot of today is missing or stale, committing each
    batch. On a day's first run (or after a settings change that was not recalculated) that is everyone; later
    runs find only the customers no change has recalculated yet, through the (customer_id, date) index, since
    every change recalculates the customers it touches as it is saved."""
    today = today or clock.today()
    settings = current_settings()
    rest = current_app.config["HEALTH_JOB_REST_PERCENT"] / 100
    if completed_on() != today:
        return recalculate(today=today, settings=settings, commit_each=True, rest=rest)
    stale = db.session.scalars(
        select(Customer.id).where(~select(HealthScore.id).where(
            HealthScore.customer_id == Customer.id, HealthScore.date == today,
            HealthScore.settings_version == settings.version).exists())).all()
    return recalculate(stale, today, settings, commit_each=True, rest=rest) if stale else 0


def completed_on() -> dt.date | None:
    """The day of the last recalculation of every customer."""
    marker = db.session.get(AppSetting, COMPLETED_ON)
    return dt.date.fromisoformat(marker.value) if marker is not None else None
