"""Recording feedback; a detractor's answer asks the customer's owner to follow up the next day."""
from __future__ import annotations

import datetime as dt

from .. import audit, clock
from ..extensions import db
from ..models import Customer, Feedback, Intervention
from ..health import snapshots
from ..health.rule_tasks import insert_new
from .analysis import DETRACTOR_MAX

FOLLOW_UP_RULE = "detractor_follow_up"


def record(customer: Customer, values: dict, actor: str, user_id: int | None = None) -> Feedback:
    """Store one feedback entry (nps, csat, comment, feature_request, bug_report, source) and its follow-up."""
    item = Feedback(customer_id=customer.id, recorded_by_id=user_id, **values)
    db.session.add(item)
    db.session.flush()
    audit.created(actor, "feedback", f"{customer.public_id}/{item.id}", user_id)
    if item.nps is not None and item.nps <= DETRACTOR_MAX:
        follow_up(customer, item, actor)
    if item.nps is not None:  # the detractor signal follows the latest answer
        snapshots.recalculate([customer.id])
    return item


def follow_up(customer: Customer, item: Feedback, actor: str) -> Intervention | None:
    """A task for the owner, due tomorrow; none while an earlier detractor follow-up is still open or snoozed
    (the database refuses a second one, so two answers at the same moment still make one task)."""
    comment = f" They said: {item.comment}" if item.comment else ""
    created = insert_new([{
        "customer_id": customer.id, "kind": "task", "title": f"Follow up on NPS {item.nps} (detractor)",
        "body": f"{customer.organization} answered {item.nps} out of 10.{comment}",
        "due_date": clock.today() + dt.timedelta(days=1), "assignee_id": customer.owner_id, "status": "open",
        "trigger": "rule", "rule": FOLLOW_UP_RULE, "created_at": clock.now()}])
    if not created:
        return None
    [(task_id, _)] = created
    audit.created(actor, "interventions", f"{customer.public_id}/{task_id}")
    return db.session.get(Intervention, task_id)
