"""Lift of a playbook: how much more health and activity its customers gained than similar untreated ones.

Pure arithmetic over snapshots, no Flask import. For each finished task of a playbook, starting on the day
it was created: the change of score and days active from that day to 14 and 30 days later. The controls of
that start are the customers with the same band and stage on a day of the same ISO week, with no task or
note of any playbook or rule from 30 days before to 30 days after; each control's change is taken over the
same dates. A control counted for several starts on the same day counts once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from statistics import fmean
from typing import Iterable, Mapping, NamedTuple

HORIZONS = (14, 30)
CLEAR_DAYS = 30
MIN_SAMPLE = 5


class Snapshot(NamedTuple):
    score: int
    days_active: int
    band: str
    stage: str


class Start(NamedTuple):
    playbook_id: int
    customer_id: int
    day: dt.date


Snapshots = Mapping[tuple[int, dt.date], Snapshot]


@dataclass(frozen=True)
class Lift:
    horizon: int
    treated_n: int
    control_n: int
    treated_score: float | None
    control_score: float | None
    treated_days: float | None
    control_days: float | None

    @property
    def enough(self) -> bool:
        return self.treated_n >= MIN_SAMPLE and self.control_n >= MIN_SAMPLE

    @property
    def score_lift(self) -> float | None:
        return None if None in (self.treated_score, self.control_score) else self.treated_score - self.control_score

    @property
    def days_lift(self) -> float | None:
        return None if None in (self.treated_days, self.control_days) else self.treated_days - self.control_days


def change(snapshots: Snapshots, customer_id: int, start: dt.date, horizon: int) -> tuple[int, int] | None:
    """(score change, days-active change) from `start` to `horizon` days later; None without both snapshots."""
    before, after = snapshots.get((customer_id, start)), snapshots.get((customer_id, start + dt.timedelta(horizon)))
    if before is None or after is None:
        return None
    return after.score - before.score, after.days_active - before.days_active


def iso_week(day: dt.date) -> list[dt.date]:
    monday = day - dt.timedelta(days=day.weekday())
    return [monday + dt.timedelta(days=offset) for offset in range(7)]


def needed_days(starts: Iterable[dt.date], horizons: Iterable[int] = HORIZONS) -> set[dt.date]:
    """The snapshot days the calculation reads: each start's week and its horizons."""
    days: set[dt.date] = set()
    for start in starts:
        days.update(iso_week(start))
        days.update(start + dt.timedelta(horizon) for horizon in horizons)
    return days


class Controls:
    """Finds the untreated customers like a treated one, indexing the snapshots by day once."""

    def __init__(self, snapshots: Snapshots, rule_days: Mapping[int, Iterable[dt.date]]):
        self.by_day: dict[dt.date, dict[tuple[str, str], set[int]]] = {}
        for (customer_id, day), snap in snapshots.items():
            self.by_day.setdefault(day, {}).setdefault((snap.band, snap.stage), set()).add(customer_id)
        self.rule_days = {customer_id: sorted(days) for customer_id, days in rule_days.items()}

    def clear(self, customer_id: int, start: dt.date) -> bool:
        low, high = start - dt.timedelta(CLEAR_DAYS), start + dt.timedelta(CLEAR_DAYS)
        return not any(low <= day <= high for day in self.rule_days.get(customer_id, ()))

    def of(self, start: dt.date, band: str, stage: str) -> set[int]:
        alike = set().union(*(self.by_day.get(day, {}).get((band, stage), set()) for day in iso_week(start)))
        return {customer_id for customer_id in alike if self.clear(customer_id, start)}


def mean(values: list[int]) -> float | None:
    return fmean(values) if values else None


def lift(starts: Iterable[Start], snapshots: Snapshots, controls: Controls, horizon: int) -> Lift:
    """One playbook's lift at one horizon."""
    treated: list[tuple[int, int]] = []
    control: dict[tuple[int, dt.date], tuple[int, int]] = {}
    for start in starts:
        moved, first = change(snapshots, start.customer_id, start.day, horizon), snapshots.get(
            (start.customer_id, start.day))
        if moved is None:
            continue
        treated.append(moved)
        for other in controls.of(start.day, first.band, first.stage):
            other_moved = change(snapshots, other, start.day, horizon)
            if other_moved is not None:
                control[(other, start.day)] = other_moved
    return Lift(horizon, len(treated), len(control),
                mean([score for score, _ in treated]), mean([score for score, _ in control.values()]),
                mean([days for _, days in treated]), mean([days for _, days in control.values()]))


def leaderboard(starts: Iterable[Start], snapshots: Snapshots, rule_days: Mapping[int, Iterable[dt.date]],
                horizons: Iterable[int] = HORIZONS) -> dict[int, dict[int, Lift]]:
    """{playbook id: {horizon: Lift}} for every playbook with a start."""
    controls = Controls(snapshots, rule_days)
    by_playbook: dict[int, list[Start]] = {}
    for start in starts:
        by_playbook.setdefault(start.playbook_id, []).append(start)
    return {playbook_id: {horizon: lift(own, snapshots, controls, horizon) for horizon in horizons}
            for playbook_id, own in by_playbook.items()}
