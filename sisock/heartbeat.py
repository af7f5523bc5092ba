"""Health reports: what data-feeds and the g3-reader publish every few seconds for the health node.

A data-feed reports its feed's age (seconds since its last message, measured on
its own clock, so hosts' clocks never skew it) and its newest sample time; the
g3-reader reports each provider's newest indexed time and the bad files. They
go to topic :data:`TOPIC`; the health data node (:mod:`sisock.health`, in the
hub's process) keeps the last of each and samples them into its history.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from twisted.internet import defer, task

from sisock import log, wamp
from sisock.metrics.feed import Activity

TOPIC = f"{wamp.BASE_URI}.health.report"
#: Seconds between two reports of one component.
EVERY = 5.0


def feed_report(topic: str, node: str, activity: Activity) -> dict:
    """A data-feed's report: its feed (``observatory.<agent>.feeds.<feed>``), node, age and newest sample."""
    return {"kind": "feed", "feed": topic, "node": node, "age": activity.age(),
            "silent_since_start": activity.silent_since_start, "newest": activity.newest()}


def archive_report(newest: Dict[str, float], bad_files: int) -> dict:
    """The g3-reader's report: every provider's newest indexed time, and the bad files."""
    return {"kind": "archive", "providers": newest, "bad_files": bad_files}


class Reporter:
    """Publishes ``make()`` (a report, or a Deferred of one; None: nothing this time) every
    :data:`EVERY` seconds while joined."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.session: Optional[Any] = None
        self._loop = task.LoopingCall(self._tick)
        self._throttle = log.Throttle(60.0)
        self.log = log.logger()

    def start(self, session) -> None:
        """Report on ``session`` from now on (each (re)join); the reactor's thread."""
        self.session = session
        if not self._loop.running:
            self._loop.start(EVERY, now=True)

    def _tick(self) -> Optional[defer.Deferred]:
        session = self.session
        if session is None or not session.is_attached():
            return None
        d = defer.maybeDeferred(self.make)
        d.addCallback(lambda report: session.publish(TOPIC, report) if report and session.is_attached() else None)
        d.addErrback(lambda failure: self._throttle.warn(self.log, "report", "cannot report health: {error}",
                                                         error=failure.getErrorMessage()))
        return d
