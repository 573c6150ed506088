"""The events log's filters and queries, and who an event names as its sender (pure, for the unmatched list)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, false, select
from werkzeug.datastructures import MultiDict

from .. import pages
from ..pages import Page, query_args
from ..extensions import db
from ..integrations.github import LOGIN_PATHS
from ..integrations.payloads import dig
from ..models import EVENT_OUTCOMES, EVENT_SOURCES, Customer, Event
from ..validation import page_number

PAGE_SIZE = 50


@dataclass
class Filters:
    """What the log shows, read from the query string so every state has a URL."""

    source: str = ""
    type: str = ""
    outcome: str = ""
    customer: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict) -> Filters:
        filters = cls(type=args.get("type", "").strip()[:80], customer=args.get("customer", "").strip()[:20])
        filters.source = args.get("source", "") if args.get("source") in EVENT_SOURCES else ""
        filters.outcome = args.get("outcome", "") if args.get("outcome") in EVENT_OUTCOMES else ""
        filters.page = page_number(args.get("page"))
        return filters

    def args(self, **changes) -> dict:
        """The query-string arguments of this state with some changed (for links); empty ones left out."""
        return query_args({"source": self.source, "type": self.type, "outcome": self.outcome, "customer": self.customer,
                           "page": self.page, **changes})

    def conditions(self) -> list:
        where = []
        if self.source:
            where.append(Event.source == self.source)
        if self.type:
            where.append(Event.event_type == self.type)
        if self.outcome:
            where.append(Event.outcome == self.outcome)
        if self.customer:
            key = Customer.key_of(self.customer)
            where.append(Event.customer_id == key if key is not None else false())
        return where


def paginate(filters: Filters) -> Page:
    """One page of events, newest first: a count and a select() of PAGE_SIZE rows."""
    return pages.paginate(newest_first(filters.conditions()), filters.page, PAGE_SIZE, scalars=True)


def newest_first(where: list) -> Select:
    return select(Event).where(*where).order_by(Event.received_at.desc(), Event.id.desc())


# The filter suggests the types of this many latest events (through ix_events_received); any type can be typed.
SUGGESTED_FROM = 1_000


def event_types() -> list[str]:
    """The types of the latest events, as suggestions for the filter: a bounded read, where every type ever seen
    took a pass over the whole log."""
    latest = select(Event.event_type).order_by(Event.received_at.desc(), Event.id.desc()).limit(SUGGESTED_FROM)
    types = latest.subquery()
    return list(db.session.scalars(select(types.c.event_type).distinct().order_by(types.c.event_type).limit(200)))


def sender(source: str, payload: Any) -> str:
    """The account login or email an event carries: what an unmatched event failed to match, or ""."""
    if source == "github":
        candidates = [dig(payload, *path) for path in LOGIN_PATHS]
    elif source == "landing":
        candidates = [dig(payload, "customer", "email")]
    elif source == "email_provider":
        first = payload[0] if isinstance(payload, list) and payload else payload
        candidates = [dig(first, "email")]
    else:
        candidates = []
    return next((value for value in candidates if isinstance(value, str) and value), "")
