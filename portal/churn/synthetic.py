"""Synthetic history with known churn mechanics, for demos, tests and the benchmark. Pure: no Flask, no database.

Each customer signs up, onboards (most finish, some stall: a low score that does NOT raise churn), and uses the
Action on a share of days. About 45% of customers are hit by one planted mechanic at a random day:

- rejections: reviewers start rejecting most PRs (the all-time success rate in the score barely moves);
- detractor: the customer answers an NPS survey with 0-5;
- blocker: an onboarding blocker is recorded and stays open;
- fading: activity fades out over three weeks.

Three in four of those churn 14-40 days later; the others recover. Noise on top: a few customers churn at
random, some passives answer 4-6, short blockers come and go. A model that sees the mechanics should beat the
plain health score, which only notices fading activity.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from ..health import metrics

MECHANICS = ("rejections", "detractor", "blocker", "fading")
MECHANIC_SHARE = 0.45
CHURN_AFTER_MECHANIC = 0.75
RANDOM_CHURN = 0.05
BLOCKERS = ("github_config", "permissions", "authentication", "technical")


@dataclass(frozen=True)
class Params:
    customers: int = 600
    days: int = 240
    seed: int = 7
    today: dt.date = dt.date(2026, 1, 1)

    @property
    def start(self) -> dt.date:
        return self.today - dt.timedelta(days=self.days - 1)


@dataclass
class History:
    """One customer's generated life: what the loader writes and what the tests check against."""

    key: int
    signup: dt.date
    steps_at: list[dt.date | None]
    mechanic: str | None = None
    mechanic_on: dt.date | None = None
    churned_on: dt.date | None = None
    engagement: list[tuple] = field(default_factory=list)  # (date, issues, generated, merged, rejected, support)
    snapshots: list[tuple] = field(default_factory=list)  # (date, Health, steps done, days active, generated, merged)
    answers: list[tuple[dt.date, int]] = field(default_factory=list)
    blockers: list[tuple[str, dt.date, dt.date | None]] = field(default_factory=list)  # (type, set, cleared)


def generate(params: Params, weights: metrics.Weights = metrics.Weights()):
    """Yield one History per customer (keys 1..customers), deterministic for a seed."""
    rng = random.Random(params.seed)
    for key in range(1, params.customers + 1):
        history = plan(key, params, rng)
        simulate(history, params, rng)
        history.snapshots = snapshots(history, params.today, weights)
        yield history


def plan(key: int, params: Params, rng: random.Random) -> History:
    latest_signup = max(params.days * 3 // 5, 1)
    signup = params.start + dt.timedelta(days=rng.randrange(latest_signup))
    done = 5 if rng.random() < 0.85 else rng.randint(1, 4)
    steps_at, day = [], signup
    for index in range(len(metrics.STEPS)):
        steps_at.append(day if index < done else None)
        day += dt.timedelta(days=rng.randint(0, 4))
    history = History(key, signup, steps_at)
    if rng.random() < MECHANIC_SHARE:
        history.mechanic = rng.choice(MECHANICS)
        history.mechanic_on = signup + dt.timedelta(days=rng.randint(20, params.days))
        if rng.random() < CHURN_AFTER_MECHANIC:
            history.churned_on = history.mechanic_on + dt.timedelta(days=rng.randint(14, 40))
    if history.churned_on is None and rng.random() < RANDOM_CHURN:
        history.churned_on = signup + dt.timedelta(days=rng.randint(20, params.days))
    if history.churned_on is not None and history.churned_on > params.today:
        history.churned_on = None
    return history


def simulate(history: History, params: Params, rng: random.Random) -> None:
    """Daily engagement, NPS answers and blockers from signup to churn (or today)."""
    base_activity, base_merge = rng.uniform(0.25, 0.85), rng.uniform(0.55, 0.9)
    installed = history.steps_at[2]
    end = min(history.churned_on or params.today, params.today)
    mechanic, since = history.mechanic, history.mechanic_on
    recovers = since + dt.timedelta(days=rng.randint(15, 30)) if since and history.churned_on is None else None
    plan_blockers(history, end, rng)
    day = history.signup
    while day <= end:
        hit = since is not None and since <= day and (recovers is None or day < recovers)
        if (day - history.signup).days % 60 == 45 and rng.random() < 0.6:
            history.answers.append((day, rng.randint(4, 6) if rng.random() < 0.08 else rng.randint(7, 10)))
        if hit and mechanic == "detractor" and day == since:
            history.answers.append((day, rng.randint(0, 5)))
        activity = base_activity
        if hit and mechanic == "fading":
            activity *= max(0.05, 1 - (day - since).days / 21)
        if installed is not None and installed <= day and rng.random() < activity:
            merge = 0.12 if hit and mechanic == "rejections" else base_merge
            support = 0.3 if blocked(history, day) else 0.04
            history.engagement.append(usage(day, merge, support, rng))
        day += dt.timedelta(days=1)


def plan_blockers(history: History, end: dt.date, rng: random.Random) -> None:
    if history.mechanic == "blocker" and history.mechanic_on <= end:
        cleared = None if history.churned_on else history.mechanic_on + dt.timedelta(days=rng.randint(3, 10))
        history.blockers.append((rng.choice(BLOCKERS), history.mechanic_on, cleared))
    elif rng.random() < 0.12:
        start = history.signup + dt.timedelta(days=rng.randint(0, max((end - history.signup).days, 0)))
        history.blockers.append((rng.choice(BLOCKERS), start, start + dt.timedelta(days=rng.randint(2, 6))))


def blocked(history: History, day: dt.date) -> bool:
    return any(start <= day and (cleared is None or day < cleared) for _, start, cleared in history.blockers)


def usage(day: dt.date, merge: float, support: float, rng: random.Random) -> tuple:
    issues = rng.randint(1, 3)
    generated = min(issues, rng.randint(1, 2))
    merged = sum(rng.random() < merge for _ in range(generated))
    return day, issues, generated, merged, generated - merged, int(rng.random() < support)


def snapshots(history: History, today: dt.date, weights: metrics.Weights) -> list[tuple]:
    """The daily health snapshot with the portal's own formula (metrics.health), from signup to churn or today."""
    end = min(history.churned_on or today, today)
    by_day = {row[0]: row for row in history.engagement}
    window = weights.window_days
    rows, active, generated, merged = [], [], 0, 0
    day = history.signup
    while day <= end:
        if day in by_day:
            active.append(day)
            generated, merged = generated + by_day[day][2], merged + by_day[day][3]
        first = metrics.window_start(day, window)
        while active and active[0] < first:
            active.pop(0)
        steps = sum(1 for at in history.steps_at if at is not None and at <= day)
        result = metrics.health(steps, len(active), generated, merged, weights)
        rows.append((day, result, steps, len(active), generated, merged))
        day += dt.timedelta(days=1)
    return rows
