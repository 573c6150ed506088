"""The email log's filters and page query."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, select
from werkzeug.datastructures import MultiDict

from .. import pages
from ..pages import Page, query_args
from ..extensions import db
from ..models import EMAIL_STATUSES, Customer, EmailNotification
from ..validation import page_number
from .content import KINDS

PAGE_SIZE = 50
EN = EmailNotification


@dataclass
class Filters:
    """What the log shows, read from the query string so every state has a URL."""

    status: str = ""
    kind: str = ""
    customer: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict) -> Filters:
        return cls(status=args.get("status", "") if args.get("status") in EMAIL_STATUSES else "",
                   kind=args.get("kind", "") if args.get("kind") in KINDS else "",
                   customer=args.get("customer", "").strip()[:20], page=page_number(args.get("page")))

    def args(self, **changes) -> dict:
        return query_args({"status": self.status, "kind": self.kind, "customer": self.customer, "page": self.page,
                           **changes})

    def conditions(self) -> list:
        where = []
        if self.status:
            where.append(EN.status == self.status)
        if self.kind:
            where.append(EN.kind == self.kind)
        if self.customer:
            key = Customer.key_of(self.customer)
            where.append(EN.customer_id == key if key is not None else false())
        return where


def paginate(where: list, number: int) -> Page:
    """One page of emails, newest first: a count and PAGE_SIZE rows."""
    return pages.paginate(select(EN).where(*where).order_by(EN.queued_at.desc(), EN.id.desc()), number, PAGE_SIZE,
                          scalars=True)


# What the log's head counts: the emails that need someone (failed) or are on their way (queued).
COUNTED = ("failed", "queued")


def status_counts() -> dict[str, int]:
    """How many emails of each COUNTED status, each up to pages.BADGE_CAP + 1 (see the `count` filter): a walk of
    the (status, queued_at, id) index that stops there, not a pass over the whole outbox. Each is read through a
    server-side cursor, which PostgreSQL plans for its first rows: as a plain count, short of statistics, it was
    planned as a bitmap of every matching index entry (100,000 queued) before the limit."""
    found = {}
    for status in COUNTED:
        ids = (select(EN.id).where(EN.status == status).order_by(EN.queued_at.desc(), EN.id.desc())
               .limit(pages.BADGE_CAP + 1).execution_options(stream_results=True))
        found[status] = len(db.session.scalars(ids).all())
    return found


def recent_for(customer_id: int, limit: int = 10) -> list[EmailNotification]:
    return list(db.session.scalars(select(EN).where(EN.customer_id == customer_id)
                                   .order_by(EN.queued_at.desc(), EN.id.desc()).limit(limit)))
