"""The email log's filters and page query."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, func, select
from werkzeug.datastructures import MultiDict

from .. import pages
from ..pages import Page, query_args
from ..extensions import db
from ..models import EMAIL_STATUSES, Customer, EmailCount, EmailNotification
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


def paginate(filters: Filters) -> Page:
    """One page of emails, newest first: PAGE_SIZE rows, and how many there are: from email_counts unless the
    log is narrowed to a customer (whose emails are counted through their index)."""
    query = select(EN).where(*filters.conditions()).order_by(EN.queued_at.desc(), EN.id.desc())
    known = None if filters.customer else counted(filters.status, filters.kind)
    return pages.paginate(query, filters.page, PAGE_SIZE, scalars=True, known=known)


def counted(status: str = "", kind: str = "") -> int:
    """How many emails there are of the status and kind ("": any), from email_counts (kept by triggers)."""
    query = select(func.coalesce(func.sum(EmailCount.emails), 0))
    if status:
        query = query.where(EmailCount.status == status)
    if kind:
        query = query.where(EmailCount.kind == kind)
    return int(db.session.scalar(query))


# What the log's head counts: the emails that need someone (failed) or are on their way (queued).
COUNTED = ("failed", "queued")


def status_counts() -> dict[str, int]:
    """How many emails of each COUNTED status, from email_counts."""
    found = dict.fromkeys(COUNTED, 0)
    for status, emails in db.session.execute(select(EmailCount.status, func.sum(EmailCount.emails))
                                             .where(EmailCount.status.in_(COUNTED)).group_by(EmailCount.status)):
        found[status] = int(emails)
    return found


def recent_for(customer_id: int, limit: int = 10) -> list[EmailNotification]:
    return list(db.session.scalars(select(EN).where(EN.customer_id == customer_id)
                                   .order_by(EN.queued_at.desc(), EN.id.desc()).limit(limit)))
