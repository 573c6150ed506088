"""The at-risk playbook: a task for the owner of each customer who moved into at risk since their last snapshot."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import aliased

from .. import analytics, audit
from ..health import explain, metrics, snapshots
from ..extensions import db
from ..models import Customer, HealthScore, Intervention, format_id, utcnow
from ..health.rule_tasks import PENDING, insert_new
from .registry import Context

RULE = "at_risk_playbook"
ACTOR = "at-risk playbook"
DUE_IN = dt.timedelta(days=2)


def newly_at_risk(today: dt.date) -> Select:
    """(customer, today's snapshot, previous snapshot) for each active customer at risk today whose previous
    snapshot was in another band and who has no pending playbook task. A customer with no earlier snapshot has
    not moved, so is left out. One query, whose cost follows today's at-risk customers rather than the history:
    each one's previous snapshot is the latest before today, found backwards through the (customer_id, date)
    unique index instead of grouping every earlier snapshot of every customer."""
    current, previous, earlier = aliased(HealthScore), aliased(HealthScore), aliased(HealthScore)
    previous_date = (select(func.max(earlier.date)).where(earlier.customer_id == current.customer_id,
                                                          earlier.date < today)
                     .correlate(current).scalar_subquery())
    pending = exists().where(Intervention.customer_id == Customer.id, Intervention.rule == RULE,
                             Intervention.status.in_(PENDING))
    return (
        select(Customer, current, previous)
        .join(current, and_(current.customer_id == Customer.id, current.date == today))
        .join(previous, and_(previous.customer_id == current.customer_id, previous.date == previous_date))
        .where(Customer.status == "active", current.status == "at_risk", previous.status != "at_risk", ~pending)
        .order_by(Customer.id)
    )


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
    analytics.ensure_todays_scores(context.today)
    rows = db.session.execute(newly_at_risk(context.today)).all()
    context.progress(0, len(rows))
    weights = snapshots.weights_of(snapshots.current_settings())
    tasks = [task_for(customer, current, previous, weights) for customer, current, previous in rows]
    if not tasks:
        return {"tasks": 0}
    # One INSERT for all the tasks; the ids come back for the audit log.
    created = insert_new(tasks)
    for task_id, customer_id in created:
        audit.created(ACTOR, "interventions", f"{format_id(Customer.PREFIX, customer_id)}/{task_id}")
    return {"tasks": len(created)}
