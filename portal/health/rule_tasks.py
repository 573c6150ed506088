"""Tasks made by rules (the at-risk playbook, the detractor follow-up, playbooks): at most one pending task per
rule and customer, decided by the database's partial unique index uq_interventions_pending_rule."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..extensions import db
from ..models import Intervention
from ..sql import insert_for

# A snoozed task is still someone's to do: no second one while it waits.
PENDING = ("open", "snoozed")


def insert_new(tasks: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Insert the tasks; a task whose customer already has a pending one of the same rule is left out by the
    database (ON CONFLICT DO NOTHING), even when a concurrent run inserted it a moment ago. Returns (task id,
    customer id) of the tasks inserted. Executed as many parameter sets, which SQLAlchemy sends as batched
    multi-row INSERTs: one statement of thousands of VALUES took longer to compile than to run."""
    if not tasks:
        return []
    statement = insert_for(Intervention).on_conflict_do_nothing().returning(Intervention.id, Intervention.customer_id)
    return [(task_id, customer_id) for task_id, customer_id in db.session.execute(statement, list(tasks))]
