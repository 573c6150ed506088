"""The portal's scheduled jobs. Each returns counts for its run's record; the runner commits after it."""
from __future__ import annotations

import datetime as dt
from typing import Any
from ..health import snapshots
from . import playbook
from .registry import Context, Job


def as_counts(result: Any, name: str) -> dict[str, int]:
    """A callee's answer as counts: a mapping of numbers as it is, a number under `name`, a list by its length."""
    if isinstance(result, dict):
        return {str(key): value for key, value in result.items() if isinstance(value, int)}
    if isinstance(result, int):
        return {name: result}
    if isinstance(result, (list, tuple, set)):
        return {name: len(result)}
    return {}


def recalculate_health(context: Context) -> dict[str, int]:
    context.progress(0, 1)
    return {"customers": snapshots.refresh(context.today)}


def deliver_emails(context: Context) -> dict[str, int]:
    # Imported when the job runs: the factory loads the jobs before any blueprint, the emails code needs them.
    from ..emails import delivery

    return as_counts(delivery.deliver_due(context.now, progress=context.progress), "delivered")


def weekly_emails(context: Context) -> dict[str, int]:
    from ..emails import campaigns

    return {**as_counts(campaigns.queue_weekly_summaries(context.today, context.progress), "summaries"),
            **as_counts(campaigns.queue_team_digest(context.today), "digests")}


def reengagement(context: Context) -> dict[str, int]:
    from ..emails import campaigns

    return as_counts(campaigns.queue_reengagement(context.today, context.progress), "queued")


def churn_model(context: Context) -> dict[str, int]:
    from ..churn import service

    return as_counts(service.train_job(context.now, progress=context.progress), "version")


def playbooks(context: Context) -> dict[str, int]:
    from .. import analytics
    from ..playbooks import service

    analytics.ensure_todays_scores(context.today, wait=True)
    context.progress(0, None)
    return service.start_active(context.now, "playbooks job")


def backup(context: Context) -> dict[str, int]:
    from ..backups import service

    return service.backup_job(context)


def erase_churned(context: Context) -> dict[str, int]:
    from ..health import settings
    from ..customers import erasure

    days = settings.get("erase_churned_after_days")
    return {"erased": erasure.erase_churned(days, "retention rule", context.now)}


STANDARD_JOBS = [
    Job("health", "Recalculate the health scores no change has recalculated yet: everyone on the day's first run "
        "(the day's snapshot), in batches.",
        "Every hour at :05", {"minute": 5}, recalculate_health, title="Health recalculation"),
    Job("deliver_emails", "Send the queued emails that are due, with retries and back-off.",
        "Every minute", {"minute": "*"}, deliver_emails, timeout=dt.timedelta(minutes=10), title="Email delivery"),
    Job("weekly_emails", "Queue each active customer's weekly summary and the team's weekly digest.",
        "Mondays at 08:00", {"day_of_week": "mon", "hour": 8, "minute": 0}, weekly_emails),
    Job("reengagement", "Queue re-engagement emails to customers with no recent activity.",
        "Daily at 09:00", {"hour": 9, "minute": 0}, reengagement),
    Job("at_risk_playbook", "Give the owner of each customer newly at risk a task, due in two days.",
        "Daily at 07:00", {"hour": 7, "minute": 0}, playbook.run, title="At-risk tasks"),
    Job("churn_model", "Retrain the churn-risk model on the history up to now, as a new version.",
        "Sundays at 03:00", {"day_of_week": "sun", "hour": 3, "minute": 0}, churn_model,
        timeout=dt.timedelta(minutes=30), title="Churn model training"),
    Job("playbooks", "Start every active playbook for the customers who qualify, within each owner's daily cap.",
        "Daily at 07:30", {"hour": 7, "minute": 30}, playbooks, title="Playbooks"),
    Job("backup", "Back up the database and the secret key into BACKUP_DIR, then delete the ones retention gives up.",
        "Daily at 02:30", {"hour": 2, "minute": 30}, backup, title="Backup"),
    Job("erase_churned", "Erase the personal data of customers churned longer ago than the Privacy setting says "
        "(off by default).", "Daily at 03:30", {"hour": 3, "minute": 30}, erase_churned,
        title="Erasure of churned customers"),
]
