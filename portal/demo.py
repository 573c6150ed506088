"""Plausible demo data: about 40 customers at every stage and band, with 60 days of engagement."""
from __future__ import annotations

import datetime as dt
import random
import secrets

from sqlalchemy import select

from . import clock
from .health import metrics, snapshots
from .customers import service
from .extensions import db
from .models import Customer, Engagement, Feedback, Intervention, User
from .playbooks import demo as playbook_demo

ORGANIZATIONS = [
    "Acme Robotics", "Bluefin Analytics", "Cobalt Health", "Driftwood Games", "Evergreen Bank", "Foxglove Labs",
    "Granite Logistics", "Harbor Insurance", "Ironclad Security", "Juniper Retail", "Kestrel Aerospace",
    "Lumen Energy", "Maple Learning", "Nimbus Cloud", "Orchid Biotech", "Pinecone Media", "Quartz Payments",
    "Redwood Legal", "Sable Travel", "Tidewater Shipping", "Umbra Studios", "Vantage Realty", "Willow Foods",
    "Xenon Devices", "Yellowtail Mobility", "Zephyr Telecom", "Atlas Manufacturing", "Beacon Nonprofit",
    "Cedar Pharmacy", "Delta Agritech", "Ember Fintech", "Fable Publishing", "Glacier Water", "Halcyon Hotels",
    "Indigo Fashion", "Jasper Mining", "Kinetic Sports", "Lark Music", "Meridian Consulting", "Nova Space",
]
INDUSTRIES = ["SaaS", "Fintech", "Healthcare", "E-commerce", "Gaming", "Logistics", "Education", "Media"]
COHORTS = ["VIP", "Beta", "GA"]
# (steps done, share of the last 30 days active, merge rate, PRs a day when active, status)
PROFILES = [
    (5, 0.8, 0.9, 2, "active"),     # champion
    (5, 0.5, 0.7, 1, "active"),     # healthy
    (5, 0.15, 0.4, 1, "active"),    # needs attention
    (4, 0.3, 0.5, 1, "active"),     # initial adoption
    (3, 0.1, 0.2, 0, "active"),     # onboarding, action installed
    (2, 0.0, 0.0, 0, "active"),     # onboarding, account created
    (1, 0.0, 0.0, 0, "active"),     # new signup
    (5, 0.05, 0.2, 1, "churned"),   # churned
]
BLOCKERS = {2: "permissions", 3: "github_config", 4: "technical", 1: "authentication"}
# NPS answers the demo draws from, by how the customer is doing: (score range, comments).
ANSWERS = {
    "happy": ((8, 10), ["The fix PRs save our team hours every week", "Setup was quick and the PRs are clean",
                        "Great support team, fast answers", "Merged most PRs without changes"]),
    "unsure": ((5, 8), ["Some PRs need too many changes before merge", "Setup of the GitHub permissions was confusing",
                        "Useful but slow on large repositories", "Would like better test coverage in the PRs"]),
    "unhappy": ((1, 6), ["Too many PRs rejected by reviewers", "GitHub permissions setup was confusing and slow",
                         "The Action stopped working after an update", "Support answers were slow"]),
}


def owners() -> list[User]:
    team = []
    for name in ("Dana Ortiz", "Sam Lee", "Priya Nair"):
        user = User(email=f"{name.split()[0].lower()}@example.com", name=name, role="member")
        user.set_password(secrets.token_urlsafe(16))
        db.session.add(user)
        team.append(user)
    return team


def load(seed: int = 7) -> int:
    rng = random.Random(seed)
    today = clock.today()
    team = owners()
    for number, organization in enumerate(ORGANIZATIONS):
        steps_done, activity, merge_rate, prs_a_day, status = PROFILES[number % len(PROFILES)]
        login = organization.lower().replace(" ", "-")
        signup = today - dt.timedelta(days=rng.randint(8, 28) if steps_done < 3 else rng.randint(35, 120))
        customer = service.add_customer(
            {"email": f"cs@{login}.example", "organization": organization, "github_username": login,
             "cohort": COHORTS[number % 3], "industry": rng.choice(INDUSTRIES), "team_size": str(rng.randint(2, 200))},
            actor="demo", signup_date=signup, status=status,
        )
        customer.owner = team[number % len(team)] if number % 5 else None
        day = signup
        for step in metrics.STEPS[:steps_done]:
            when = dt.datetime.combine(day, dt.time(10), dt.timezone.utc)
            service.set_step(customer, step, True, actor="demo", when=when)
            day += dt.timedelta(days=rng.randint(0, 6))
        if steps_done < 5 and number % 3:
            customer.onboarding.blocker_type = BLOCKERS.get(steps_done, "other")
            customer.onboarding.notes = "Waiting on the customer's GitHub admin."
        db.session.add_all(engagement(rng, customer.id, today, signup, activity, merge_rate, prs_a_day))
        db.session.add_all(feedback(rng, customer.id, today, signup, merge_rate))
    db.session.flush()
    for days_ago in range(60, -1, -1):
        snapshots.recalculate(today=today - dt.timedelta(days=days_ago))
    tasks(today)
    playbook_demo.load(today)
    db.session.commit()
    return len(ORGANIZATIONS)


TASKS = [("Call about the GitHub permissions blocker", -2), ("Walk the team through tagging issues", 0),
         ("Review rejected PRs with their lead", 1), ("Check in after the Action update", 3),
         ("Quarterly business review", 10)]


def tasks(today: dt.date) -> None:
    """A few open tasks for the owners, one of them overdue."""
    owned = db.session.scalars(select(Customer).where(Customer.owner_id.is_not(None)).order_by(Customer.id)).all()
    for customer, (title, due_in) in zip(owned[1::3], TASKS):
        db.session.add(Intervention(customer_id=customer.id, kind="task", title=title, assignee_id=customer.owner_id,
                                    due_date=today + dt.timedelta(days=due_in), status="open", trigger="person"))


def feedback(rng, customer_id, today, signup, merge_rate):
    """Up to three NPS answers since signup, kinder the more PRs get merged."""
    mood = "happy" if merge_rate >= 0.7 else "unsure" if merge_rate >= 0.4 else "unhappy"
    (low, high), comments = ANSWERS[mood]
    for _ in range(rng.randint(0, 3)):
        day = signup + dt.timedelta(days=rng.randint(0, max((today - signup).days, 0)))
        yield Feedback(customer_id=customer_id, nps=rng.randint(low, high), csat=rng.randint(max(low // 2, 1), 5),
                       comment=rng.choice(comments), source="survey",
                       created_at=dt.datetime.combine(day, dt.time(15), dt.timezone.utc))


def engagement(rng, customer_id, today, signup, activity, merge_rate, prs_a_day):
    for days_ago in range(59, -1, -1):
        day = today - dt.timedelta(days=days_ago)
        if day < signup or rng.random() >= activity:
            continue
        issues = rng.randint(1, 3)
        generated = min(issues, rng.randint(prs_a_day, prs_a_day + 1)) if prs_a_day else 0
        merged = sum(rng.random() < merge_rate for _ in range(generated))
        yield Engagement(
            customer_id=customer_id, date=day, issues_tagged=issues, prs_generated=generated,
            prs_merged=merged, prs_rejected=generated - merged, support_requests=int(rng.random() < 0.1),
        )
