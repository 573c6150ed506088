"""Playbooks as records: saving them (audited), describing them in words, and the queries of their pages."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from .. import audit, clock
from ..extensions import db
from ..health.metrics import label
from ..models import Customer, HealthScore, Intervention, Playbook
from ..health.risk import TITLES
from ..validation import ValidationError
from . import lift
from .service import RULE_PREFIX

FIELDS = ("name", "description", "active", "condition", "steps")


def save(playbook: Playbook | None, values: dict, actor: str, user_id: int | None = None) -> Playbook:
    """Create (playbook None) or change a playbook; a name already taken is the name field's error."""
    creating = playbook is None
    playbook = playbook or Playbook(created_by=actor)
    changes = audit.apply_changes(playbook, {name: values[name] for name in FIELDS})
    db.session.add(playbook)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ValidationError("Another playbook has this name.", "name") from None
    if creating:
        audit.created(actor, "playbooks", str(playbook.id), user_id)
    else:
        audit.record(actor, "playbooks", str(playbook.id), changes, user_id)
    return playbook


def describe_condition(condition: dict) -> str:
    parts = []
    for key, noun in (("bands", "band"), ("stages", "stage")):
        if condition.get(key):
            parts.append(f"{noun} " + " or ".join(label(value).lower() for value in condition[key]))
    if condition.get("cohorts"):
        parts.append("cohort " + " or ".join(condition["cohorts"]))
    if condition.get("signal"):
        parts.append(f"signal “{TITLES.get(condition['signal'], condition['signal'])}”")
    low, high = condition.get("min_days"), condition.get("max_days")
    if low is not None or high is not None:
        parts.append("signed up " + (f"{low} to {high}" if None not in (low, high) else
                                     f"at least {low}" if high is None else f"at most {high}") + " days ago")
    return "Active customers" + (" with " + ", ".join(parts) if parts else " (all of them)")


def describe_step(step: dict) -> str:
    if step["kind"] == "task":
        return f"Task for the owner, due in {step['due_days']} day(s): “{step['title']}”"
    if step["kind"] == "note":
        return f"Note: “{step['text'][:80]}”"
    return f"Email: “{step['subject']}”"


def listing() -> list[Playbook]:
    return list(db.session.scalars(select(Playbook).order_by(Playbook.name)))


def recent_tasks(playbook: Playbook, limit: int = 20) -> Select:
    return (select(Intervention, Customer).join(Customer, Customer.id == Intervention.customer_id)
            .where(Intervention.rule == playbook.rule, Intervention.kind == "task")
            .order_by(Intervention.created_at.desc(), Intervention.id.desc()).limit(limit))


def playbook_of(rule: str) -> int | None:
    digits = rule[len(RULE_PREFIX):]
    return int(digits) if rule.startswith(RULE_PREFIX) and digits.isdigit() else None


def leaderboard() -> dict[int, dict[int, lift.Lift]]:
    """Three queries: the finished playbook tasks, every rule-made intervention near them, the snapshots of the
    days the arithmetic reads (portal.playbooks.lift)."""
    finished = db.session.execute(select(Intervention.rule, Intervention.customer_id, Intervention.created_at).where(
        Intervention.kind == "task", Intervention.status == "done", Intervention.rule.startswith(RULE_PREFIX))).all()
    starts = [lift.Start(playbook_of(rule), customer_id, clock.local_date(created_at))
              for rule, customer_id, created_at in finished if playbook_of(rule) is not None]
    if not starts:
        return {}
    first, last = min(start.day for start in starts), max(start.day for start in starts)
    window = dt.timedelta(days=lift.CLEAR_DAYS + 1)  # a day more: the bounds are UTC, the days local
    rule_days: dict[int, list[dt.date]] = {}
    for customer_id, created_at in db.session.execute(select(Intervention.customer_id, Intervention.created_at).where(
            Intervention.rule.is_not(None), Intervention.created_at >= clock_moment(first - window),
            Intervention.created_at < clock_moment(last + window))):
        rule_days.setdefault(customer_id, []).append(clock.local_date(created_at))
    days = sorted(lift.needed_days(start.day for start in starts))
    snapshots = {(row.customer_id, row.date): lift.Snapshot(row.score, row.days_active, row.status, row.stage)
                 for row in db.session.execute(select(
                     HealthScore.customer_id, HealthScore.date, HealthScore.score, HealthScore.days_active,
                     HealthScore.status, HealthScore.stage).where(HealthScore.date.in_(days)))}
    return lift.leaderboard(starts, snapshots, rule_days)


def clock_moment(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=clock.zone())


def set_active(playbook: Playbook, active: bool, actor: str, user_id: int | None = None) -> None:
    audit.record(actor, "playbooks", str(playbook.id), audit.apply_changes(playbook, {"active": active}), user_id)


def ranked(playbooks: list[Playbook], board: dict[int, dict[int, lift.Lift]]) -> list[tuple[Playbook, dict]]:
    """Playbooks by their 30-day score lift, then the 14-day one; those with too few customers to tell last."""
    def key(playbook: Playbook):
        lifts = board.get(playbook.id, {})
        measured = [lifts[h].score_lift if h in lifts and lifts[h].enough else None for h in (30, 14)]
        return tuple((value is None, -(value or 0)) for value in measured) + (playbook.name,)
    return [(playbook, board.get(playbook.id, {})) for playbook in sorted(playbooks, key=key)]
