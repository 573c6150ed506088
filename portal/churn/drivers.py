"""What a feature's value means in words, for the drivers beside a customer's risk. Pure: no Flask, no database."""
from __future__ import annotations

from .features import BLOCKER_DAYS_CAP, LOOKBACK, NEUTRAL_NPS, WINDOW

POINTS = {"onboarding": 30, "activity": 30, "success": 25, "volume": 15}


WEEKS = f"{WINDOW // 7} weeks"


def moved(amount: float, what: str, span: str) -> str:
    if round(amount) == 0:
        return f"{what} unchanged over {span}"
    return f"{what} {'rose' if amount > 0 else 'fell'} {abs(amount):.0f} points in {span}"


def phrase(name: str, value: float) -> str:
    """rejection_rate_change, 30.0 -> "rejection rate rose 30 points in 30 days"."""
    for component, maximum in POINTS.items():
        if name == component:
            return f"{component} {value:.0f} of {maximum} points"
        for days in (7, 30):
            if name == f"{component}_change_{days}d":
                return moved(value, f"{component} score", f"{days} days")
    if name == "days_since_activity":
        return f"no activity for {LOOKBACK}+ days" if value >= LOOKBACK else f"last active {value:.0f} days ago"
    if name == "rejection_rate":
        return f"{value:.0f}% of PRs closed in {WEEKS} were rejected"
    if name == "rejection_rate_change":
        return moved(value, "rejection rate", WEEKS)
    if name == "support_requests":
        return f"{value:.0f} support requests in {WEEKS}"
    if name == "blocker_open":
        return "an onboarding blocker is open" if value else "no onboarding blocker open"
    if name == "blocker_days":
        longest = "+" if value >= BLOCKER_DAYS_CAP else ""
        return f"a blocker open for {value:.0f}{longest} days" if value else "no long-open blocker"
    if name == "last_nps":
        return f"last NPS answer {value:.0f}" if value != NEUTRAL_NPS else "last NPS answer 7 (or none yet)"
    return f"{name.replace('_', ' ')} {value:g}"
