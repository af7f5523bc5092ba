"""A data-feed's metrics and activity: messages and samples by outcome, when the last message came,
and the bytes its buffer holds. :class:`Activity` also feeds the health reports (:mod:`sisock.heartbeat`)."""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

from prometheus_client import Counter, Gauge

MESSAGES = Counter("sisock_data_feed_messages", "Feed messages received, by feed and outcome (kept, malformed, "
                   "foreign: another agent's)", ["feed", "outcome"])
SAMPLES = Counter("sisock_data_feed_samples", "Samples (one field at one time) received, by feed and outcome "
                  "(kept; dropped: older than the cache's newest, or ahead of this clock)", ["feed", "outcome"])
LAST = Gauge("sisock_data_feed_last_message_timestamp_seconds", "UNIX time the feed's last message arrived "
             "(0: none since start)", ["feed"])
AGE = Gauge("sisock_data_feed_last_message_age_seconds", "Seconds since the feed's last message (since this "
            "process started when none came)", ["feed"])
NEWEST = Gauge("sisock_data_feed_newest_sample_timestamp_seconds", "The newest sample time the feed's buffer "
               "holds (the agent's clock; NaN when empty)", ["feed"])
BUFFER = Gauge("sisock_data_feed_buffer_bytes", "Bytes the feed's buffer holds", ["feed"])


class Activity:
    """What one feed did: counted into the metrics, and asked by the health reports."""

    def __init__(self, feed: str, newest: Callable[[], Optional[float]], nbytes: Callable[[], int]) -> None:
        self.feed = feed
        self.newest = newest
        self._started = time.monotonic()
        self._last: Optional[float] = None  # monotonic time of the last message
        AGE.labels(feed).set_function(self.age)
        NEWEST.labels(feed).set_function(lambda: math.nan if (t := newest()) is None else t)
        BUFFER.labels(feed).set_function(nbytes)
        LAST.labels(feed).set(0)
        for outcome in ("kept", "malformed", "foreign"):
            MESSAGES.labels(feed, outcome)
        for outcome in ("kept", "dropped"):
            SAMPLES.labels(feed, outcome)

    def message(self, kept: int, dropped: int) -> None:
        """A message was taken: ``kept`` and ``dropped`` samples."""
        self._last = time.monotonic()
        LAST.labels(self.feed).set(time.time())
        MESSAGES.labels(self.feed, "kept").inc()
        SAMPLES.labels(self.feed, "kept").inc(kept)
        SAMPLES.labels(self.feed, "dropped").inc(dropped)

    def refused(self, outcome: str) -> None:
        """A message was refused (``malformed`` or ``foreign``)."""
        MESSAGES.labels(self.feed, outcome).inc()

    def age(self) -> float:
        """Seconds since the last message, or since the start when none came."""
        return time.monotonic() - (self._started if self._last is None else self._last)

    @property
    def silent_since_start(self) -> bool:
        """True until the first message."""
        return self._last is None
