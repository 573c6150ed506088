"""Which backups to keep: the newest of each of the last N days that have one, and the newest of each of the last M
ISO weeks that have one; every other backup goes. Pure: names and times in, names out.

"Days that have one" rather than the last N calendar days: when backups stop for a while (a full disk, a host
down), the ones from before the gap are kept rather than aged out one by one while nothing new arrives.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, NamedTuple


class Stored(NamedTuple):
    name: str
    taken: dt.datetime
    number: int = 1  # the second backup within the same second is number 2


@dataclass(frozen=True)
class Plan:
    keep: list[str]
    delete: list[str]


def plan(backups: Iterable[Stored], keep_daily: int, keep_weekly: int, zone: dt.tzinfo = dt.timezone.utc) -> Plan:
    """Days and weeks are calendar days and ISO weeks in `zone`. keep_daily is at least 1, so the newest backup, the
    one just written, is always kept."""
    if keep_daily < 1:
        raise ValueError(f"BACKUP_KEEP_DAILY must be at least 1, not {keep_daily}")
    if keep_weekly < 0:
        raise ValueError(f"BACKUP_KEEP_WEEKLY must be 0 or more, not {keep_weekly}")
    newest_first = sorted(backups, key=lambda backup: (backup.taken, backup.number), reverse=True)
    days: dict[dt.date, str] = {}
    weeks: dict[tuple[int, int], str] = {}
    for backup in newest_first:
        day = backup.taken.astimezone(zone).date()
        days.setdefault(day, backup.name)
        weeks.setdefault(tuple(day.isocalendar())[:2], backup.name)
    kept = set(list(days.values())[:keep_daily]) | set(list(weeks.values())[:keep_weekly])
    return Plan(keep=[backup.name for backup in newest_first if backup.name in kept],
                delete=[backup.name for backup in newest_first if backup.name not in kept])
