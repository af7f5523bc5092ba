"""The g3-file-scanner's metrics: files, bytes and frames read, bad files, passes and their
duration, the watcher's events and overflows, and each provider's newest indexed time.

Its worker processes (:mod:`sisock.g3.parallel`) only read files and hand each
result back; the scanner stores every result itself, so it counts everything
here, in one process, with nothing to gather from the workers.
"""
from __future__ import annotations

import time
from typing import Dict

from prometheus_client import Counter, Gauge, Histogram

FILES = Counter("sisock_g3_scanner_files_read", "Files read (whole, or on from where they grew)")
BYTES = Counter("sisock_g3_scanner_read_bytes", "Bytes of .g3 files read")
FRAMES = Counter("sisock_g3_scanner_frames_indexed", "Data frames indexed")
BAD_READS = Counter("sisock_g3_scanner_bad_file_reads", "Reads that found a file damaged (recorded bad)")
REMOVED = Counter("sisock_g3_scanner_files_removed", "Files gone from the tree, removed from the index")
PASSES = Counter("sisock_g3_scanner_passes", "Full passes over the tree, by outcome (ok, failed)", ["outcome"])
PASS_SECONDS = Histogram("sisock_g3_scanner_pass_duration_seconds", "Seconds a full pass took",
                         buckets=(0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 4 * 3600.0))
LAST_PASS = Gauge("sisock_g3_scanner_last_pass_timestamp_seconds", "UNIX time the last full pass ended well")
WATCH_EVENTS = Counter("sisock_g3_scanner_watch_events", "inotify events about .g3 files")
WATCH_OVERFLOWS = Counter("sisock_g3_scanner_watch_overflows", "Times the kernel's inotify queue overflowed (events "
                          "lost: a full pass follows at once)")
WATCHED = Gauge("sisock_g3_scanner_watched_folders", "Folders watched with inotify (0: not watching)")
BAD_FILES = Gauge("sisock_g3_bad_files", "Files the index records as bad")
NEWEST = Gauge("sisock_g3_provider_newest_sample_timestamp_seconds", "UNIX time of the end of a provider's "
               "newest indexed frame", ["provider"])

for outcome in ("ok", "failed"):
    PASSES.labels(outcome)


def stored(nbytes: int, frames: int, bad: bool) -> None:
    """One file's read was stored."""
    FILES.inc()
    BYTES.inc(nbytes)
    FRAMES.inc(frames)
    if bad:
        BAD_READS.inc()


def pass_done(ok: bool, seconds: float = 0.0) -> None:
    """A full pass ended."""
    PASSES.labels("ok" if ok else "failed").inc()
    if ok:
        PASS_SECONDS.observe(seconds)
        LAST_PASS.set(time.time())


def archive(newest: Dict[str, float], bad_files: int) -> None:
    """The index's state (:class:`sisock.g3.state.ArchiveState`) after a pass or a watched scan."""
    for provider, t in newest.items():
        NEWEST.labels(provider).set(t)
    BAD_FILES.set(bad_files)
