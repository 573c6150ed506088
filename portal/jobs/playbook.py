"""The at-risk playbook: a task for the owner of each customer who moved into at risk since their last snapshot."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, exists, select

from .. import analytics, audit
from ..batches import id_ranges, latest
from ..health import explain, metrics, snapshots
from ..extensions import db
from ..models import Customer, HealthScore, Intervention, format_id, utcnow
from ..health.rule_tasks import PENDING, insert_new
from .registry import Context

RULE = "at_risk_playbook"
ACTOR = "at-risk playbook"
DUE_IN = dt.timedelta(days=2)


def newly_at_risk(today: dt.date, low: int, high: int) -> Select:
    """(customer id, today's snapshot id, previous snapshot id) for each active customer with an id from low to
    high, at risk today, whose previous snapshot was in another band and who has no pending playbook task. A
    customer with no earlier snapshot has not moved, so is left out.

    Each customer's snapshots are probed backwards through the (customer_id, date) unique index (portal.batches):
    today's is their latest up to today when it is dated today, the previous one their latest before today."""
    current = latest(HealthScore.id, through=today)
    pending = exists().where(Intervention.customer_id == Customer.id, Intervention.rule == RULE,
                             Intervention.kind == "task", Intervention.status.in_(PENDING))
    return (
        select(Customer.id, current.label("current"), latest(HealthScore.id, before=today).label("previous"))
        .where(Customer.id.between(low, high), Customer.status == "active",
               latest(HealthScore.date, through=today) == today,
               latest(HealthScore.status, through=today) == "at_risk",
               latest(HealthScore.status, before=today) != "at_risk", ~pending)
        .order_by(Customer.id)
    )


def moved(today: dt.date, low: int, high: int) -> list[tuple[Customer, HealthScore, HealthScore]]:
    """newly_at_risk's customers and snapshots, loaded by primary key."""
    found = db.session.execute(newly_at_risk(today, low, high)).all()
    if not found:
        return []
    customers = {customer.id: customer for customer in db.session.scalars(
        select(Customer).where(Customer.id.in_([key for key, _, _ in found])))}
    snaps = {snap.id: snap for snap in db.session.scalars(
        select(HealthScore).where(HealthScore.id.in_([key for _, *pair in found for key in pair])))}
    return [(customers[key], snaps[current], snaps[previous]) for key, current, previous in found]


def task_for(customer: Customer, current: HealthScore, previous: HealthScore, weights: metrics.Weights) -> dict:
    since = f"since {previous.date.isoformat()}"
    lines = [
        f"{customer.organization} ({customer.public_id}) moved into at risk: health {previous.score} "
        f"({metrics.label(previous.status).lower()}) on {previous.date.isoformat()}, {current.score} on "
        f"{current.date.isoformat()}.",
        f"Why it moved: {explain.why_it_moved(previous, current, since)}",
    ]
    needed = explain.next_band(current, weights)
    if needed:
        lines.append(f"To recover: {needed}")
    lines.append("Reach out, find what blocks them, and note what you did on the customer's page.")
    return {
        "customer_id": customer.id, "kind": "task", "trigger": "rule", "rule": RULE, "status": "open",
        "title": f"At risk: {customer.organization[:150]} fell to {current.score}",
        "body": "\n".join(lines), "due_date": current.date + DUE_IN, "assignee_id": customer.owner_id,
        "created_at": utcnow(),
    }


def run(context: Context) -> dict[str, int]:
    """Batch by batch of customers, each batch's tasks inserted in one statement and committed: the partial
    unique index refuses a second pending task, so a run that stops half-way and runs again creates each task
    once, and the session holds one batch at a time."""
    analytics.ensure_todays_scores(context.today, wait=True)
    weights = snapshots.weights_of(snapshots.current_settings())
    created = 0
    for low, high in id_ranges(progress=context.progress):
        tasks = [task_for(customer, current, previous, weights) for customer, current, previous
                 in moved(context.today, low, high)]
        # The ids come back for the audit log.
        for task_id, customer_id in insert_new(tasks):
            audit.created(ACTOR, "interventions", f"{format_id(Customer.PREFIX, customer_id)}/{task_id}")
            created += 1
        db.session.commit()
    return {"tasks": created}
