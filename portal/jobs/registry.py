"""What the scheduler runs: each job's name, description, cron schedule in the portal's time zone, and callable.

Pure: no Flask import, so the schedules can be checked with plain datetimes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# A job reports how far it got: progress(done, total); total may be None while unknown.
Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class Context:
    """What a job gets: the moment it runs for, that moment's calendar day in the portal's zone, and progress."""

    now: dt.datetime
    today: dt.date
    progress: Progress


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    schedule: str
    cron: Mapping[str, Any]
    run: Callable[[Context], Mapping[str, int] | None]
    # After this long a run still marked running is shown as abandoned, and a SQLite lease expires.
    timeout: dt.timedelta = dt.timedelta(hours=1)
    title: str = ""  # what the pages call it; by default its name in words

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    def trigger(self, zone: ZoneInfo) -> CronTrigger:
        # Cron, never interval: every process fires at the same wall-clock moment, so the lock can pick one.
        return CronTrigger(timezone=zone, **self.cron)

    def next_run(self, zone: ZoneInfo, after: dt.datetime) -> dt.datetime | None:
        return self.trigger(zone).get_next_fire_time(None, after)

    def slot(self, zone: ZoneInfo, moment: dt.datetime, grace: dt.timedelta) -> dt.datetime | None:
        """The scheduled time a run starting at `moment` belongs to: its latest firing within `grace` before."""
        trigger = self.trigger(zone)
        fire = trigger.get_next_fire_time(None, moment - grace)
        if fire is None or fire > moment:
            return None
        while (following := trigger.get_next_fire_time(fire, fire)) is not None and following <= moment:
            fire = following
        return fire


class UnknownJob(LookupError):
    pass


class Registry:
    """The jobs of one app; tests add their own to their app's registry only."""

    def __init__(self, jobs: list[Job]):
        self._jobs = {job.name: job for job in jobs}

    def add(self, job: Job) -> None:
        self._jobs[job.name] = job

    def get(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJob(f"unknown job {name!r}; the jobs are: {', '.join(self._jobs)}") from None

    def find(self, name: str) -> Job | None:
        return self._jobs.get(name)

    def __iter__(self):
        return iter(self._jobs.values())

    def __contains__(self, name: str) -> bool:
        return name in self._jobs
