"""The pure parts of a playbook: its email placeholders and the daily cap per owner. No Flask import."""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

PLACEHOLDERS = ("organization", "public_id", "owner", "cohort", "band", "stage", "score")


def unknown_placeholders(template: str) -> list[str]:
    """The {names} of the template that are not placeholders; raises ValueError on a stray brace."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    return [name for name in names if name not in PLACEHOLDERS]


def render(template: str, values: Mapping[str, object]) -> str:
    """The template with its placeholders filled in; checked on save, so only known names remain."""
    return template.format_map({name: values.get(name, "") for name in PLACEHOLDERS})


@dataclass
class Allocation:
    """Who gets a task today under the cap, and how many were skipped per owner."""

    chosen: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)


def within_cap(candidates: Iterable[tuple[Any, object]], used: Mapping[object, int], cap: int) -> Allocation:
    """candidates: (item, owner) in priority order; used: playbook tasks each owner already got today.
    Each owner gets at most `cap` a day; the rest are skipped, not queued for later."""
    result, given = Allocation(), dict(used)
    for item, owner in candidates:
        if given.get(owner, 0) < cap:
            given[owner] = given.get(owner, 0) + 1
            result.chosen.append(item)
        else:
            result.skipped[owner] = result.skipped.get(owner, 0) + 1
    return result
