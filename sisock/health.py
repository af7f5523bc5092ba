"""The data node ``sisock_health``: sisock's own health as time series, for Grafana alert rules.

It runs in the hub's process (no unit of its own: the hub is the one component
every site has, and it knows which data nodes live). Every :data:`SAMPLE_EVERY`
seconds it writes one row of figures into a ring of :data:`KEEP` seconds, from
the last report of each data-feed and of the g3-reader (:mod:`sisock.heartbeat`)
and the hub's list:

==============================  =====  ==================================================================
field                           units  meaning
==============================  =====  ==================================================================
``feed_age.<feed>``             s      seconds since the feed's last live message (since its data-feed
                                       started, when none came); grows on when the data-feed is gone
``archive_newest.<provider>``   s      UNIX time of the provider's newest indexed frame's end
``archive_age.<provider>``      s      seconds from that time to now
``archive_lag.<provider>``      s      how far the archive is behind the provider's live feed (its newest
                                       sample minus the archive's newest; providers with a data-feed only)
``bad_files``                          files the index records as bad
``data_nodes``                         data nodes the hub lists
``node_up.<node>``                     1 while the hub lists the node, 0 once it has gone
==============================  =====  ==================================================================

``<feed>`` and ``<provider>`` are the OCS names, ``observatory.<agent>.feeds.<feed>``,
so ``feed_age.observatory.LSA22YE.feeds.temperatures`` and
``archive_lag.observatory.LSA22YE.feeds.temperatures`` describe one feed. Every
feed, provider and node seen since the hub started keeps its fields until the
hub restarts (a feed whose data-feed is gone keeps ageing: that is the alert).
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from twisted.internet import task

from sisock import heartbeat
from sisock.config import Config
from sisock.datanode import DataNodeServer, data_result, field_info
from sisock.servers.ring_buffer import RingTable

NAME = "sisock_health"
#: Seconds between two rows of figures.
SAMPLE_EVERY = 5.0
#: Seconds of rows kept (24 h at 5 s: 17 280 rows).
KEEP = 24 * 3600.0
#: Most feeds, providers and nodes followed (a flood of reports cannot grow the table without end).
MOST_SUBJECTS = 2000
#: The one timeline every field shares.
TIMELINE = "sisock_health"

#: field prefix -> (units, what it means, with {} for the subject)
MEANINGS = {
    "feed_age": ("s", "seconds since the last live message of {}"),
    "archive_newest": ("s", "UNIX time of the newest indexed sample of {}"),
    "archive_age": ("s", "seconds since the newest indexed sample of {}"),
    "archive_lag": ("s", "seconds the archive of {} is behind its live feed"),
    "bad_files": ("", "files the g3 index records as bad"),
    "data_nodes": ("", "data nodes the hub lists"),
    "node_up": ("", "1 while the hub lists data node {}, else 0"),
}


class Figures:
    """The last reports, turned into one row of figures on demand."""

    def __init__(self, nodes: Callable[[], List[str]]) -> None:
        self.nodes = nodes
        self.feeds: Dict[str, Tuple[dict, float]] = {}  # feed -> (report, monotonic time it came)
        self.archive: Optional[dict] = None
        self.seen_nodes: Dict[str, None] = {}

    def take(self, report: object) -> bool:
        """Keep a report; False for one that is not a report."""
        if not isinstance(report, dict):
            return False
        if report.get("kind") == "feed" and isinstance(report.get("feed"), str) and _number(report.get("age")):
            if report["feed"] in self.feeds or len(self.feeds) < MOST_SUBJECTS:
                self.feeds[report["feed"]] = (report, time.monotonic())
            return True
        if report.get("kind") == "archive" and isinstance(report.get("providers"), dict):
            providers = {p: float(t) for p, t in list(report["providers"].items())[:MOST_SUBJECTS]
                         if isinstance(p, str) and isinstance(t, (int, float)) and _number(t)}
            bad = report.get("bad_files")
            self.archive = {"providers": providers,
                            "bad_files": float(bad) if isinstance(bad, (int, float)) and _number(bad) else math.nan}
            return True
        return False

    def row(self, now: float) -> Dict[str, float]:
        """Every figure now (UNIX time ``now``)."""
        mono = time.monotonic()
        row: Dict[str, float] = {}
        newest_live: Dict[str, float] = {}
        for feed, (report, came) in self.feeds.items():
            row[f"feed_age.{feed}"] = float(report["age"]) + (mono - came)
            if _number(report.get("newest")):
                newest_live[feed] = float(report["newest"])
        if self.archive is not None:
            for provider, newest in self.archive["providers"].items():
                row[f"archive_newest.{provider}"] = newest
                row[f"archive_age.{provider}"] = now - newest
                if provider in newest_live:
                    row[f"archive_lag.{provider}"] = max(0.0, newest_live[provider] - newest)
            row["bad_files"] = self.archive["bad_files"]
        listed = self.nodes()
        for node in listed:
            if node in self.seen_nodes or len(self.seen_nodes) < MOST_SUBJECTS:
                self.seen_nodes[node] = None
        row["data_nodes"] = float(len(listed))
        up = set(listed)
        row.update({f"node_up.{node}": float(node in up) for node in self.seen_nodes})
        return row


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def describe(field: str) -> Tuple[str, str]:
    """(description, units) of a health field."""
    prefix, _, subject = field.partition(".")
    units, meaning = MEANINGS.get(prefix, ("", field))
    return meaning.format(subject), units


class HealthServer(DataNodeServer):
    """Serves :class:`Figures` sampled into a ring; see the module docstring."""

    name = NAME
    description = "sisock's own health: feed ages, archive lag, bad files, data nodes up"

    def __init__(self, config: Config, nodes: Callable[[], List[str]]) -> None:
        super().__init__(config)
        self.figures = Figures(nodes)
        self.table = RingTable()
        self._lock = threading.Lock()
        self._sampler = task.LoopingCall(self.sample)
        self._known: set = set()

    def ready(self) -> None:
        """Nothing: systemd's status line of the hub's process stays the hub's."""

    def name_taken(self) -> None:
        """Another hub's health node: the hub itself stops, saying that another hub runs."""

    def on_join(self, session):
        if not self._sampler.running:
            self._sampler.start(SAMPLE_EVERY, now=True)
        return session.subscribe(self.receive, heartbeat.TOPIC)

    def receive(self, report=None, *_args, **_kwargs) -> None:
        """A health report (in the reactor)."""
        self.figures.take(report)

    def sample(self, now: Optional[float] = None) -> None:
        """Append one row of figures, and forget rows older than KEEP (in the reactor)."""
        now = time.time() if now is None else now
        row = self.figures.row(now)
        with self._lock:
            if self.table.last_time is not None and now < self.table.last_time:
                return  # the clock stepped back: wait for it
            self.table.append(np.array([now]), {k: np.array([v]) for k, v in row.items()})
            self.table.trim_before(now - KEEP)
        if set(row) - self._known:  # a new feed, provider or node: sisock-http reads the fields now
            self._known |= set(row)
            self.announce()

    def get_fields(self, start: float, end: float):
        with self._lock:
            names, interval = self.table.present(start, end)
        fields = {name: field_info(TIMELINE, *describe(name)) for name in names}
        return fields, ({TIMELINE: {"interval": interval, "field": names}} if names else {})

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        with self._lock:
            t, columns = self.table.window(start, end, fields)
        return data_result({TIMELINE: (t, columns)} if columns else {})
