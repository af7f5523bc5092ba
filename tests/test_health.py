"""The health figures without processes: what a row holds, which reports count, the inotify overflow count."""
from __future__ import annotations

import math
import struct
import threading
import time

from prometheus_client import REGISTRY
from twisted.internet import inotify

from sisock.g3 import watch
from sisock.health import MOST_SUBJECTS, Figures, describe
from sisock.metrics import scanner as scanner_metrics  # noqa: F401 (registers the scanner's metrics)

OVERFLOWS = "sisock_g3_scanner_watch_overflows_total"

FEED = "observatory.LSA22YE.feeds.temperatures"


def test_a_row_holds_ages_lags_bad_files_and_nodes_up_and_down():
    listed = ["g3_reader", "lsa22ye"]
    figures = Figures(lambda: list(listed))
    assert figures.take({"kind": "feed", "feed": FEED, "node": "lsa22ye", "age": 2.0, "newest": 1000.0})
    assert figures.take({"kind": "archive", "providers": {FEED: 940.0, "observatory.X.feeds.y": 500.0},
                         "bad_files": 3})
    row = figures.row(now=1010.0)
    assert 2.0 <= row[f"feed_age.{FEED}"] < 3.0  # the report's age, plus the moments since it came
    assert (row[f"archive_newest.{FEED}"], row[f"archive_age.{FEED}"], row[f"archive_lag.{FEED}"]) == (940.0, 70.0,
                                                                                                        60.0)
    assert "archive_lag.observatory.X.feeds.y" not in row  # no live feed to compare with
    assert (row["bad_files"], row["data_nodes"], row["node_up.g3_reader"]) == (3.0, 2.0, 1.0)
    listed.remove("g3_reader")
    assert figures.row(now=1011.0)["node_up.g3_reader"] == 0.0  # a node seen once stays, at 0


def test_reports_that_are_not_reports_are_ignored_and_subjects_are_bounded():
    figures = Figures(lambda: [])
    for junk in (None, [], {"kind": "feed"}, {"kind": "feed", "feed": FEED, "age": math.inf},
                 {"kind": "feed", "feed": FEED, "age": True}, {"kind": "archive", "providers": []}):
        assert not figures.take(junk)
    for i in range(MOST_SUBJECTS + 10):
        figures.take({"kind": "feed", "feed": f"observatory.a{i}.feeds.f", "age": 1.0})
    assert len(figures.feeds) == MOST_SUBJECTS
    assert describe(f"feed_age.{FEED}") == (f"seconds since the last live message of {FEED}", "s")


def test_inotify_queue_overflows_are_counted_and_ask_for_a_full_pass_at_once():
    before = REGISTRY.get_sample_value(OVERFLOWS)
    changes = watch.Changes()
    notifier = watch.CountingINotify.__new__(watch.CountingINotify)
    notifier._buffer = b""
    notifier._watchpoints = {}
    notifier.overflowed = changes.overflowed
    overflow = struct.pack("=iIII", -1, inotify.IN_Q_OVERFLOW, 0, 0)
    other = struct.pack("=iIII", 5, inotify.IN_MODIFY, 0, 16) + b"name.g3".ljust(16, b"\0")
    notifier._doRead(other + overflow)
    assert REGISTRY.get_sample_value(OVERFLOWS) == before + 1
    scanned: list = []
    lines: list = []

    class Logger:
        def warn(self, text, **_):
            lines.append(text)

    began = time.monotonic()
    watch.scan_changes(changes, scanned.append, lambda: None, 3600.0, threading.Event(), Logger())
    assert time.monotonic() - began < 60 and scanned == []  # back to the caller, whose full pass follows
    assert lines == ["the inotify event queue overflowed: a full pass now"] and not changes.lost.is_set()
