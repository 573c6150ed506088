"""Why a health score is what it is, and why it moved: pure functions over snapshot-like values."""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from .metrics import STEPS, Weights, label



class Snapshot(Protocol):
    score: int
    status: str
    onboarding_component: Decimal
    activity_component: Decimal
    success_component: Decimal
    volume_component: Decimal
    onboarding_percent: int
    days_active: int
    success_rate: int
    prs_generated: int
    prs_merged: int


COMPONENTS = ("onboarding", "activity", "success", "volume")


@dataclass(frozen=True)
class Component:
    name: str
    points: Decimal
    maximum: Decimal
    inputs: str


def components(snapshot: Snapshot, weights: Weights) -> list[Component]:
    steps_done = snapshot.onboarding_percent * len(STEPS) // 100
    return [
        Component("onboarding", snapshot.onboarding_component, weights.onboarding_weight,
                  f"{steps_done} of {len(STEPS)} steps ({snapshot.onboarding_percent}%)"),
        Component("activity", snapshot.activity_component, weights.activity_max,
                  f"{snapshot.days_active} active day(s) in the last {weights.window_days}"),
        Component("success", snapshot.success_component, 100 * weights.success_weight,
                  f"{snapshot.prs_merged} of {snapshot.prs_generated} PRs merged ({snapshot.success_rate}%)"),
        Component("volume", snapshot.volume_component, weights.volume_max,
                  f"{snapshot.prs_generated} PR(s) generated"),
    ]


def _input_change(name: str, old: Snapshot, new: Snapshot) -> str:
    def moved(text: str, before, after, unit: str = "") -> str:
        verb = "rose" if after > before else "fell"
        return f"{text} {verb} from {before}{unit} to {after}{unit}"

    if name == "onboarding":
        return moved("onboarding", old.onboarding_percent, new.onboarding_percent, "%")
    if name == "activity":
        return moved("active days", old.days_active, new.days_active)
    if name == "success":
        return moved("merged rate", old.success_rate, new.success_rate, "%")
    return moved("PRs generated", old.prs_generated, new.prs_generated)


def why_it_moved(old: Snapshot | None, new: Snapshot, since: str) -> str:
    """One line: the component that changed most and the input behind it."""
    if old is None:
        return f"No score {since} to compare with."
    deltas = {name: getattr(new, f"{name}_component") - getattr(old, f"{name}_component") for name in COMPONENTS}
    name = max(COMPONENTS, key=lambda component: abs(deltas[component]))
    if deltas[name] == 0:
        return f"Unchanged {since}." if old.score == new.score else f"Moved {since} with the scoring settings."
    points = f"{deltas[name].normalize():+f} points"
    return f"{label(name)} {points}: {_input_change(name, old, new)}."


def next_band(snapshot: Snapshot, weights: Weights) -> str | None:
    """What the next band up needs, as the levers that alone would be enough; None in the top band."""
    bands = [("champion", weights.champion_min), ("healthy", weights.healthy_min),
             ("needs_attention", weights.needs_attention_min)]
    above = [(band, minimum) for band, minimum in bands if snapshot.score < minimum]
    if not above:
        return None
    band, minimum = above[-1]
    needed = minimum - snapshot.score
    levers = []
    if snapshot.onboarding_component + needed <= weights.onboarding_weight:
        levers.append("completing onboarding")
    if weights.activity_per_day > 0 and snapshot.activity_component + needed <= weights.activity_max:
        levers.append(f"{math.ceil(needed / weights.activity_per_day)} more active day(s)")
    if weights.volume_per_pr > 0 and snapshot.volume_component + needed <= weights.volume_max:
        levers.append(f"{math.ceil(needed / weights.volume_per_pr)} more PR(s) generated")
    if weights.success_weight > 0 and snapshot.success_component + needed <= 100 * weights.success_weight:
        levers.append(f"a merged rate {math.ceil(needed / weights.success_weight)} points higher")
    how = f": e.g. {' or '.join(levers)}" if levers else ""
    return f"{needed} more point(s) to reach {label(band).lower()}{how}."
