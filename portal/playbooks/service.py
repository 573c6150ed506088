"""Starting playbooks: who qualifies today, the cap per owner, the interventions each start creates."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, func, select

from .. import audit, clock
from ..batches import absent, id_ranges
from ..health import risk, settings
from ..emails import outbox
from ..extensions import db
from ..health.metrics import label
from ..models import Customer, HealthCurrent, Intervention, Playbook, User
from ..health.rule_tasks import PENDING, insert_new
from . import rules

RULE_PREFIX = "playbook:"
UNASSIGNED = "Nobody (unassigned)"


@dataclass
class RunResult:
    created: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cap: int = 0

    def as_dict(self, day: dt.date) -> dict:
        return {"day": day.isoformat(), "created": self.created, "skipped": self.skipped, "cap": self.cap}


def eligible(playbook: Playbook, today: dt.date, low: int, high: int) -> Select:
    """The ids of the active customers from low to high who qualify: a current health row of today (their snapshot
    of today) in the condition's bands and stages, the customer's side of the condition, and no pending task of the
    playbook (only a first sieve: the database's unique index is what refuses a second task).

    It reads the batch's current health rows by key range and checks each one's customer by primary key in a
    scalar subquery, as the customers table does: written as a join, PostgreSQL without fresh statistics took
    both sides for one row each and read the batch's customers again for every current row."""
    condition = playbook.condition or {}
    on_customer = [Customer.status == "active"]
    if condition.get("cohorts"):
        on_customer.append(Customer.cohort.in_(condition["cohorts"]))
    if condition.get("min_days") is not None:
        on_customer.append(Customer.signup_date <= today - dt.timedelta(days=condition["min_days"]))
    if condition.get("max_days") is not None:
        on_customer.append(Customer.signup_date >= today - dt.timedelta(days=condition["max_days"]))
    matches = select(and_(*on_customer)).where(Customer.id == HealthCurrent.customer_id).scalar_subquery()
    pending = select(Intervention.id).where(Intervention.customer_id == HealthCurrent.customer_id,
                                            Intervention.rule == playbook.rule, Intervention.kind == "task",
                                            Intervention.status.in_(PENDING))
    query = (select(HealthCurrent.customer_id)
             .where(HealthCurrent.customer_id.between(low, high), HealthCurrent.date == today, matches, absent(pending))
             .order_by(HealthCurrent.customer_id))
    for key, column in (("bands", HealthCurrent.band), ("stages", HealthCurrent.stage)):
        if condition.get(key):
            query = query.where(column.in_(condition[key]))
    return query


def candidates(playbook: Playbook, today: dt.date, low: int, high: int) -> list[tuple[Customer, HealthCurrent]]:
    """(customer, current health) of those who qualify among the ids from low to high (see eligible), by id; the
    rows are read by primary key, and the condition's signal checked on them."""
    ids = db.session.scalars(eligible(playbook, today, low, high)).all()
    if not ids:
        return []
    rows = db.session.execute(select(Customer, HealthCurrent).join(HealthCurrent, HealthCurrent.customer_id == Customer.id)
                              .where(Customer.id.in_(ids)).order_by(Customer.id)).all()
    signal = (playbook.condition or {}).get("signal")
    if signal and rows:
        raised = risk.signals([customer.id for customer, _ in rows], today)
        rows = [row for row in rows if any(item.kind == signal for item in raised.get(row[0].id, []))]
    return rows


def tasks_given_today(today: dt.date) -> dict[int | None, int]:
    """Playbook tasks each owner got on that day in the portal's zone, whichever playbook."""
    since = dt.datetime.combine(today, dt.time(0), tzinfo=clock.zone())
    return dict(db.session.execute(
        select(Intervention.assignee_id, func.count())
        .where(Intervention.kind == "task", Intervention.rule.startswith(RULE_PREFIX), Intervention.created_at >= since,
               Intervention.created_at < since + dt.timedelta(days=1))
        .group_by(Intervention.assignee_id)).all())


def values_for(customer: Customer, snapshot: HealthCurrent, owner: str) -> dict:
    return {"organization": customer.organization, "public_id": customer.public_id, "owner": owner,
            "cohort": customer.cohort, "band": label(snapshot.band).lower(), "stage": label(snapshot.stage).lower(),
            "score": snapshot.score}


def step_rows(playbook: Playbook, customer: Customer, snapshot: HealthCurrent, owner: str, now: dt.datetime) -> list[dict]:
    """The interventions of every step for one customer; the task first."""
    values, today = values_for(customer, snapshot, owner), clock.local_date(now)
    common = {"customer_id": customer.id, "trigger": "rule", "rule": playbook.rule, "created_at": now,
              "assignee_id": customer.owner_id, "due_date": None, "completed_at": None}
    rows = []
    for step in playbook.steps:
        if step["kind"] == "task":
            rows.append({**common, "kind": "task", "status": "open", "title": rules.render(step["title"], values)[:200],
                         "body": rules.render(step.get("body", ""), values),
                         "due_date": today + dt.timedelta(days=step["due_days"])})
        elif step["kind"] == "note":
            rows.append({**common, "kind": "note", "status": "done", "title": f"{playbook.name[:150]}: note",
                         "body": rules.render(step["text"], values), "completed_at": now})
        elif step["kind"] == "email":
            rows.append({**common, "kind": "email", "status": "done", "title": rules.render(step["subject"], values)[:200],
                         "body": rules.render(step["text"], values), "completed_at": now})
    return rows


def email_step_row(customer: Customer, step: dict, task_id: int) -> dict:
    """A playbook's email (step with its subject and text already filled in) for the outbox, once per start of the
    playbook for this customer (the start's task names it); the outbox's suppression rules still apply."""
    return {"customer_id": customer.id, "kind": "playbook", "recipient": customer.email,
            "dedupe_key": f"playbook:{customer.public_id}:task{task_id}",
            "payload": {"subject": step["subject"], "text": step["text"]}}


def create(playbook: Playbook, chosen: list, owners: dict, now: dt.datetime, actor: str,
           user_id: int | None) -> int:
    """The interventions of the chosen (customer, snapshot) pairs, their emails and audit rows; how many started."""
    planned = {customer.id: (customer, step_rows(playbook, customer, snapshot, owners.get(customer.owner_id, ""), now))
               for customer, snapshot in chosen}
    created = insert_new([steps[0] for _, steps in planned.values()])
    insert_new([row for _, customer_id in created for row in planned[customer_id][1][1:]])
    emails = []
    for task_id, customer_id in created:
        customer, steps = planned[customer_id]
        audit.created(actor, "interventions", f"{customer.public_id}/{task_id}", user_id)
        emails += [email_step_row(customer, {"subject": row["title"], "text": row["body"]}, task_id)
                   for row in steps[1:] if row["kind"] == "email"]
    outbox.queue_rows(emails)
    return len(created)


def start(playbook: Playbook, now: dt.datetime, actor: str, user_id: int | None = None,
          commit_batches: bool = False) -> RunResult:
    """Start the playbook for every customer who qualifies on now's day, within each owner's daily cap, in order
    of customer id: batch by batch of customers (portal.batches), the cap carried from one batch to the next.

    commit_batches (the daily job) commits each batch: the unique index refuses a second pending task and the cap
    counts the tasks already given today, so a run that stops half-way and runs again starts each customer once,
    within the cap, and the session holds one batch at a time. Otherwise the caller commits the whole start."""
    if not playbook.steps or playbook.steps[0]["kind"] != "task":
        raise ValueError("a playbook's first step is its task: the no-duplicate rule and the lift count on it")
    today = clock.local_date(now)
    cap = settings.get("playbook_daily_cap")
    owners = dict(db.session.execute(select(User.id, User.name)).all())
    given, skipped, result = tasks_given_today(today), {}, RunResult(cap=cap)
    for low, high in id_ranges():
        allocation = rules.within_cap(((row, row[0].owner_id) for row in candidates(playbook, today, low, high)),
                                      given, cap)
        for customer, _ in allocation.chosen:
            given[customer.owner_id] = given.get(customer.owner_id, 0) + 1
        for owner, count in allocation.skipped.items():
            skipped[owner] = skipped.get(owner, 0) + count
        result.created += create(playbook, allocation.chosen, owners, now, actor, user_id)
        if commit_batches:
            db.session.commit()
    result.skipped = {owners.get(owner, UNASSIGNED): count for owner, count in skipped.items()}
    previous = playbook.last_run_at
    playbook.last_run_at, playbook.last_result = now, result.as_dict(today)
    audit.record(actor, "playbooks", str(playbook.id), {"last_run_at": (previous, now)}, user_id)
    return result


def start_active(now: dt.datetime, actor: str) -> dict[str, int]:
    """Every active playbook, as the daily job runs them: counts for the job's record."""
    created = skipped = 0
    for playbook in db.session.scalars(select(Playbook).where(Playbook.active).order_by(Playbook.id)).all():
        result = start(playbook, now, actor, commit_batches=True)
        created, skipped = created + result.created, skipped + sum(result.skipped.values())
    return {"tasks": created, "skipped": skipped}
