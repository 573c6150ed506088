"""Assigning an unmatched event to a customer: its effects applied to that customer, once."""
from __future__ import annotations

from sqlalchemy import update

from .. import audit
from ..health import snapshots
from ..extensions import db
from ..integrations import service as integrations
from ..models import Customer, Event


def assign(event: Event, customer: Customer, actor: str, user_id: int | None = None) -> bool:
    """Apply the event to the customer unless it is no longer unmatched; the caller commits.

    The conditional UPDATE decides, not a prior read, so two people assigning the same event at once apply it once:
    the second waits for the first's row lock and then matches no row.
    """
    claimed = db.session.execute(
        update(Event).where(Event.id == event.id, Event.outcome == "unmatched")
        .values(customer_id=customer.id, outcome="processed", detail=f"assigned by {actor}")
    ).rowcount
    if not claimed:
        return False
    integrations.apply_stored(event, customer, actor)
    audit.record(actor, "events", str(event.id),
                 {"customer": (None, customer.public_id), "outcome": ("unmatched", "processed")}, user_id)
    snapshots.recalculate([customer.id])
    return True
