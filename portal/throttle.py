"""The sign-in throttle: growing waits per account, and a much higher limit per address.

Failures are rows in login_attempts, so every gunicorn worker and host sees the same counts.

Per account: the first 5 failures within 15 minutes cost nothing (typos); after that the next attempt waits
2^(n-5) seconds after the latest failure (1, 2, 4, ... seconds), at most 15 minutes. During a wait even the right
password is refused, so a guesser gains nothing by trying; a refused attempt is not recorded, so hammering does not
make the wait longer. The wait is counted from the latest failure and failures older than 15 minutes are
forgotten, so an attacker cannot hold a named account locked: once they stop, the owner is in within the
current wait (15 minutes at worst, usually far less); to keep it unavailable they would have to land one guess at
the very end of each wait, a few guesses an hour, and a team member who ticked "Keep me signed in" is not
stopped at all. A successful sign-in clears the account's failures.

Per address: 50 failures within 15 minutes from one address refuse further attempts from it until the oldest of
them is 15 minutes old. The limit is that high because a whole office behind one NAT or reverse proxy shares one
address: ten colleagues mistyping once each must not lock each other out, while one machine trying many accounts
is still slowed to 50 guesses a quarter of an hour.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from .extensions import db
from .models import LoginAttempt, utcnow

WINDOW = dt.timedelta(minutes=15)
FREE_FAILURES = 5
LONGEST_WAIT = 15 * 60
ADDRESS_FAILURES = 50
KEPT_FOR = dt.timedelta(days=1)
ADDRESS_LENGTH = 64  # the column's width; an IPv6 address takes at most 45


@dataclass(frozen=True)
class Wait:
    seconds: int
    of: str  # "account" or "address": whose failures made it

    def phrase(self) -> str:
        """"10 seconds", "1 minute", "15 minutes": rounded up, so the user is never early."""
        if self.seconds < 60:
            return f"{self.seconds} second{'s' if self.seconds != 1 else ''}"
        minutes = math.ceil(self.seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"


def account_delay(failures: int) -> int:
    """Seconds the next attempt for an account waits after its latest failure, given its recent failures."""
    if failures < FREE_FAILURES:
        return 0
    return min(2 ** min(failures - FREE_FAILURES, 20), LONGEST_WAIT)


def _seconds_until(moment: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def wait_before_attempt(email: str, address: str, now: dt.datetime | None = None) -> Wait | None:
    """How long this sign-in must wait, or None when it may be checked now."""
    now = now or utcnow()
    since = now - WINDOW
    failures, latest = db.session.execute(
        select(func.count(LoginAttempt.id), func.max(LoginAttempt.attempted_at))
        .where(LoginAttempt.email == email, LoginAttempt.attempted_at > since)
    ).one()
    delay = account_delay(failures)
    if delay and now < latest + dt.timedelta(seconds=delay):
        return Wait(_seconds_until(latest + dt.timedelta(seconds=delay), now), "account")
    oldest_counted = db.session.scalar(
        select(LoginAttempt.attempted_at)
        .where(LoginAttempt.address == address[:ADDRESS_LENGTH], LoginAttempt.attempted_at > since)
        .order_by(LoginAttempt.attempted_at.desc()).offset(ADDRESS_FAILURES - 1).limit(1)
    )
    if oldest_counted is not None:
        return Wait(_seconds_until(oldest_counted + WINDOW, now), "address")
    return None


def record_failure(email: str, address: str) -> None:
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < utcnow() - KEPT_FOR))
    db.session.add(LoginAttempt(email=email, address=address[:ADDRESS_LENGTH]))
    db.session.commit()


def clear_failures(email: str) -> None:
    """The owner got in: the account's earlier failures no longer count against it."""
    db.session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))
    db.session.commit()
