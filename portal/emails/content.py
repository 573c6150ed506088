"""What each email is: kinds, milestones, subjects and templates. Pure, no Flask."""
from __future__ import annotations

import datetime as dt

KINDS = ("milestone", "weekly_summary", "team_digest", "reengagement", "nps_survey", "playbook")
# Milestone names (ConvertKit tag milestone_<name>) in onboarding order; each onboarding step but the
# first reaches the milestone of the same name (the welcome email is what ticks the first step).
MILESTONES = ("welcome", "account_created", "github_action_installed", "first_issue_tagged",
              "first_pr_generated", "onboarding_completed")
STEP_MILESTONES = {step: step for step in MILESTONES[1:5]}
WELCOME_STEP = "welcome_email_sent"

MILESTONE_SUBJECTS = {
    "welcome": "Welcome to the early-access programme",
    "account_created": "Your account is ready: next, install the GitHub Action",
    "github_action_installed": "The Action is installed: tag your first issue",
    "first_issue_tagged": "Your first issue is tagged: a pull request is on its way",
    "first_pr_generated": "Your first pull request is ready for review",
    "onboarding_completed": "You're all set up",
}
SUBJECTS = {
    "weekly_summary": "Your week with the Action",
    "team_digest": "Customer success: the week in review",
    "reengagement": "We haven't seen you in a while",
    "nps_survey": "How likely are you to recommend us?",
}


def subject(kind: str, payload: dict) -> str:
    if kind == "milestone":
        return MILESTONE_SUBJECTS[payload["milestone"]]
    if kind == "playbook":  # written by the team in the playbook's email step
        return str(payload.get("subject", ""))[:200]
    return SUBJECTS[kind]


def template(kind: str, payload: dict, part: str) -> str:
    """The template of one part ('txt' or 'html')."""
    name = f"milestone/{payload['milestone']}" if kind == "milestone" else kind
    return f"emails/{name}.{part}"


def public_key(prefix: str, key: int) -> str:
    return f"{prefix}{key + 1000}"


def milestone_key(customer_id: int, milestone: str) -> str:
    return f"milestone:{public_key('c', customer_id)}:{milestone}"


def iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def previous_week(today: dt.date) -> tuple[dt.date, dt.date]:
    """Monday and Sunday of the ISO week that ended before today."""
    monday = today - dt.timedelta(days=today.weekday() + 7)
    return monday, monday + dt.timedelta(days=6)


def quarter(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


# Back-off after a failed attempt: 1 minute doubling to an hour; the 8th failure is final.
MAX_ATTEMPTS = 8
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait after the attempts-th failed attempt (attempts from 1)."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
