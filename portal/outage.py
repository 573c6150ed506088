"""The database going away: every request answers 503 with Retry-After (JSON for senders, a page for people)
and the log gets one line when an outage starts and one when it ends, not a traceback per request.

A sender that gets 503 knows to retry; nothing was acknowledged, so nothing is lost. The pool's connections
are replaced by SQLAlchemy once the server answers again, so no restart is needed.

An outage is over once statements succeed and none has failed for SETTLE_SECONDS: connections do not all fail at
the same instant (a server stopping ends its sessions one after the other, a cut network is found by each
connection at its next use), so a request on a connection not yet gone can succeed between two that fail, and
ending the outage there would log it as two.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

from .extensions import db

log = logging.getLogger("portal.database")
# What a database that is down, restarting, refusing connections or out of connections raises.
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
RETRY_AFTER_SECONDS = 5
SETTLE_SECONDS = 1.0


class Outage:
    """This process's view of the database: since when it has failed, and how many requests it refused."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.refused = 0
        self.last_refused = 0.0
        self.back: float | None = None  # the first success since the last failure
        self.lock = threading.Lock()

    def refused_request(self, error: BaseException) -> None:
        now = time.monotonic()
        with self.lock:
            self.refused += 1
            self.last_refused, self.back = now, None
            if self.since is not None:
                return
            self.since = now
        log.error("database unavailable, answering 503 until it is back: %s", first_line(error))

    def answered(self) -> None:
        """A statement succeeded: an outage, if there was one, is over once none has failed for SETTLE_SECONDS."""
        now = time.monotonic()
        with self.lock:
            if self.since is None:
                return
            self.back = self.back or now
            if now - self.last_refused < SETTLE_SECONDS:
                return
            lasted, refused, self.since, self.refused, self.back = self.back - self.since, self.refused, None, 0, None
        log.warning("database available again after %.1f s; %d requests were answered 503", lasted, refused)


def first_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"[:300]


def of(app: Flask | None = None) -> Outage:
    return (app or current_app).extensions["portal.outage"]


def init_app(app: Flask) -> None:
    outage = app.extensions["portal.outage"] = Outage()
    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        @event.listens_for(engine, "after_cursor_execute")
        def executed(*_args) -> None:
            if outage.since is not None:  # one attribute read a statement while all is well
                outage.answered()
