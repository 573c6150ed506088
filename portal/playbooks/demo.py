"""Demo playbooks, started on past days of the demo's history so that the lift leaderboard has something to show."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from ..extensions import db
from ..models import Intervention, Playbook
from . import service

PLAYBOOKS = [
    ("Stalled onboarding", "Customers a week or more into onboarding who have not finished it.",
     {"stages": ["onboarding"], "min_days": 7},
     [{"kind": "task", "title": "Unblock {organization}'s onboarding", "due_days": 2,
       "body": "{organization} is still onboarding (health {score}). Find what blocks them and offer a call."},
      {"kind": "note", "text": "Onboarding stalled: playbook started for {organization}."}]),
    ("At-risk rescue", "Adopting customers who fell into the at-risk band.",
     {"bands": ["at_risk"], "stages": ["initial_adoption", "regular_usage"]},
     [{"kind": "task", "title": "Call {organization}: health {score}", "due_days": 1,
       "body": "Ask how the pull requests are landing and what would make them merge more often."},
      {"kind": "email", "subject": "Can we help, {organization}?",
       "text": "Hello {organization},\n\nWe noticed fewer fixes landing lately. {owner} would be glad to help."}]),
    ("Quiet for two weeks", "No issue tagged and no PR generated for the set number of days.",
     {"signal": "inactive"},
     [{"kind": "task", "title": "Check in with {organization}", "due_days": 3, "body": ""}]),
]
# Past runs, in days before today; the tasks of runs older than a week were done three days after.
HISTORY = (50, 42, 35, 21, 10, 3)


def load(today: dt.date) -> None:
    books = [Playbook(name=name, description=description, condition=condition, steps=steps, created_by="demo")
             for name, description, condition, steps in PLAYBOOKS]
    db.session.add_all(books)
    db.session.flush()
    for days_ago in HISTORY:
        moment = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(7, 30), dt.timezone.utc)
        for book in books:
            service.start(book, moment, "demo")
        if days_ago > 7:
            db.session.execute(update(Intervention).where(
                Intervention.kind == "task", Intervention.rule.startswith(service.RULE_PREFIX),
                Intervention.status == "open").values(status="done", completed_at=moment + dt.timedelta(days=3)))
