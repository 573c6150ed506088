"""The health formulas of SPEC section 3 as pure functions: no Flask, no database.

Arithmetic is done in Decimal so that truncation is exact (0.3 x 20 is 6, not 5.999...).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from decimal import ROUND_DOWN, Decimal
from typing import Iterable, Mapping

STEPS = (
    "welcome_email_sent",
    "account_created",
    "github_action_installed",
    "first_issue_tagged",
    "first_pr_generated",
)
# How people read the values above.
WORDS = {"github": "GitHub", "action": "Action", "pr": "PR", "prs": "PRs", "nps": "NPS"}
BLOCKER_TYPES = ("none", "github_config", "permissions", "authentication", "billing", "technical", "other")
STATUSES = ("champion", "healthy", "needs_attention", "at_risk")
STAGES = ("new_signup", "onboarding", "initial_adoption", "regular_usage", "churned")


@dataclass(frozen=True)
class Weights:
    """The settings behind a score; the defaults are the SPEC's."""

    onboarding_weight: Decimal = Decimal("30")
    activity_per_day: Decimal = Decimal("5")
    activity_max: Decimal = Decimal("30")
    success_weight: Decimal = Decimal("0.25")
    volume_per_pr: Decimal = Decimal("2")
    volume_max: Decimal = Decimal("15")
    champion_min: int = 85
    healthy_min: int = 70
    needs_attention_min: int = 50
    window_days: int = 30


@dataclass(frozen=True)
class Health:
    score: int
    status: str
    onboarding: Decimal
    activity: Decimal
    success: Decimal
    volume: Decimal


def label(value: str) -> str:
    """first_pr_generated -> First PR generated; github_config -> GitHub config."""
    words = [WORDS.get(word, word) for word in value.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:] if words else value


def truncate(value: Decimal | float | int) -> int:
    return int(Decimal(value).to_integral_value(rounding=ROUND_DOWN))


def onboarding_percent(steps_done: int) -> int:
    return steps_done * 100 // len(STEPS)


def is_complete(steps: Mapping[str, bool]) -> bool:
    return all(steps[step] for step in STEPS)


def days_to_complete(signup_date: dt.date, completed_on: dt.date) -> int:
    return max((completed_on - signup_date).days, 0)


def success_rate(prs_merged: int, prs_generated: int) -> int:
    if prs_generated <= 0:
        return 0
    return prs_merged * 100 // prs_generated


def window_start(today: dt.date, window_days: int) -> dt.date:
    """The first day of the window: today and the window_days - 1 days before it."""
    return today - dt.timedelta(days=window_days - 1)


def days_active(active_dates: Iterable[dt.date], today: dt.date, window_days: int) -> int:
    first = window_start(today, window_days)
    return len({day for day in active_dates if first <= day <= today})


def is_active_day(*counts: int) -> bool:
    return any(count > 0 for count in counts)


def components(
    percent: int, complete: bool, active_days: int, rate: int, prs_generated: int, weights: Weights = Weights()
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    onboarding = weights.onboarding_weight if complete else percent * weights.onboarding_weight / 100
    activity = min(active_days * weights.activity_per_day, weights.activity_max)
    success = rate * weights.success_weight
    volume = min(prs_generated * weights.volume_per_pr, weights.volume_max)
    return onboarding, activity, success, volume


def health_status(score: int, weights: Weights = Weights()) -> str:
    if score >= weights.champion_min:
        return "champion"
    if score >= weights.healthy_min:
        return "healthy"
    if score >= weights.needs_attention_min:
        return "needs_attention"
    return "at_risk"


def saturation(per_unit: Decimal, cap: Decimal) -> int:
    """The count from which a capped component (activity, volume) stops growing."""
    return math.ceil(cap / per_unit) if per_unit > 0 else 0


def health(
    steps_done: int, active_days: int, prs_generated: int, prs_merged: int, weights: Weights = Weights()
) -> Health:
    # Capped inputs leave few distinct combinations, so scoring thousands of customers is mostly cache hits.
    return _health(
        steps_done,
        min(active_days, saturation(weights.activity_per_day, weights.activity_max)),
        success_rate(prs_merged, prs_generated),
        min(prs_generated, saturation(weights.volume_per_pr, weights.volume_max)),
        weights,
    )


@lru_cache(maxsize=16384)
def _health(steps_done: int, active_days: int, rate: int, prs_generated: int, weights: Weights) -> Health:
    parts = components(onboarding_percent(steps_done), steps_done == len(STEPS), active_days, rate, prs_generated, weights)
    score = min(max(truncate(sum(parts)), 0), 100)
    return Health(score, health_status(score, weights), *parts)


def lifecycle_stage(steps: Mapping[str, bool], customer_status: str = "active") -> str:
    if customer_status == "churned":
        return "churned"
    if is_complete(steps):
        return "regular_usage"
    if steps["first_issue_tagged"]:
        return "initial_adoption"
    if steps["github_action_installed"] or steps["account_created"]:
        return "onboarding"
    return "new_signup"
