"""What a GitHub webhook delivery means for the portal: pure, from the event name and the payload.

effect_of() answers which logins may name the customer, which onboarding step to tick and when,
and which engagement counts to add on which (UTC) day. It raises ValidationError naming the field
when a payload the portal acts on lacks what it needs.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..validation import GITHUB_LOGIN
from .payloads import dig, timestamp

# Where the customer's login is, in order of preference (SPEC section 6).
LOGIN_PATHS = (("installation", "account", "login"), ("organization", "login"), ("repository", "owner", "login"))


@dataclass(frozen=True)
class Effect:
    kind: str  # "apply" (steps and counts), "record" (kept on the timeline only), "ignored" or "ping"
    logins: tuple[str, ...] = ()
    step: str | None = None
    when: dt.datetime | None = None  # None: the time it is applied
    counts: Mapping[str, int] = field(default_factory=dict)
    day: dt.date | None = None


def event_type(event: str, payload: dict) -> str:
    """The stored type: the event name and its action, as "issues.labeled"."""
    action = payload.get("action")
    return f"{event}.{action}"[:80] if isinstance(action, str) and action else event[:80]


def logins(payload: dict) -> tuple[str, ...]:
    found: list[str] = []
    for path in LOGIN_PATHS:
        login = dig(payload, *path)
        if isinstance(login, str) and GITHUB_LOGIN.match(login) and login.lower() not in found:
            found.append(login.lower())
    return tuple(found)


def counted(payload: dict, count: str, path: tuple[str, ...], step: str | None = None) -> Effect:
    """Add one to a count on the UTC day of the payload's own time, and tick a step at that time."""
    when = timestamp(dig(payload, *path), ".".join(path))
    return Effect("apply", logins(payload), step, when if step else None, {count: 1}, when.date())


def _installation(payload: dict, _settings: Mapping[str, Any]) -> Effect:
    action = payload.get("action")
    if action == "created":
        created = dig(payload, "installation", "created_at")
        when = timestamp(created, "installation.created_at") if created is not None else None
        return Effect("apply", logins(payload), "github_action_installed", when)
    if action == "deleted":  # on the timeline; unticks nothing
        return Effect("record", logins(payload))
    return Effect("ignored", logins(payload))


def _installation_repositories(payload: dict, _settings: Mapping[str, Any]) -> Effect:
    return Effect("record", logins(payload))


def _issues(payload: dict, settings: Mapping[str, Any]) -> Effect:
    if payload.get("action") == "labeled" and dig(payload, "label", "name") == settings["trigger_label"]:
        return counted(payload, "issues_tagged", ("issue", "updated_at"), "first_issue_tagged")
    return Effect("ignored", logins(payload))


def _pull_request(payload: dict, settings: Mapping[str, Any]) -> Effect:
    branch = dig(payload, "pull_request", "head", "ref")
    action = payload.get("action")
    if not isinstance(branch, str) or not branch.startswith(settings["pr_branch_prefix"]):
        return Effect("ignored", logins(payload))  # not opened by the Action
    if action == "opened":
        return counted(payload, "prs_generated", ("pull_request", "created_at"), "first_pr_generated")
    if action == "closed" and dig(payload, "pull_request", "merged") is True:
        return counted(payload, "prs_merged", ("pull_request", "merged_at"))
    if action == "closed":
        return counted(payload, "prs_rejected", ("pull_request", "closed_at"))
    return Effect("ignored", logins(payload))


HANDLERS: dict[str, Callable[[dict, Mapping[str, Any]], Effect]] = {
    "ping": lambda payload, _settings: Effect("ping", logins(payload)),
    "installation": _installation,
    "installation_repositories": _installation_repositories,
    "issues": _issues,
    "pull_request": _pull_request,
}


def effect_of(event: str, payload: dict, settings: Mapping[str, Any]) -> Effect:
    """settings: the portal's "trigger_label" and "pr_branch_prefix"."""
    handler = HANDLERS.get(event)
    return handler(payload, settings) if handler else Effect("ignored", logins(payload))
