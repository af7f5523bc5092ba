"""The scanner follows the aggregator: inotify on every folder of the .g3 tree, so that a
frame just written is indexed within seconds instead of at the next periodic pass.

Twisted's :mod:`twisted.internet.inotify` (already a dependency, no new library) runs in a
reactor thread and watches folders only, never files: one watch per folder, so a tree of
10 000 files in a few hundred folders costs a few hundred watches and no work until
something changes. New folders are watched as they appear. Events are debounced (a burst of
writes is scanned once) and only the files that changed are scanned, incrementally, by the
same code as the periodic pass, in the scanner's own thread (never concurrently with a pass).
The periodic pass stays the safety net: network file systems deliver no events, and an
overflowed event queue loses some.
"""
from __future__ import annotations

import os
import struct
import threading
import time
from typing import Callable, List, Optional, Set

from twisted.internet import inotify
from twisted.python.filepath import FilePath

from sisock.metrics import scanner as scanner_metrics
from sisock.wamp_thread import ensure_reactor_thread, in_reactor

#: Seconds without a new event before a batch of changed files is scanned.
DEBOUNCE = 0.5
#: Longest wait (s) from a batch's first event to its scan, however busy the tree.
MAX_DELAY = 2.0
#: Seconds between two looks at the stop flag while waiting for events.
STOP_CHECK = 0.5
#: At most this often (s) the coarse summary tiers are refreshed after watched scans.
REFRESH_EVERY = 60.0
#: Seconds the scanner looks for changed files between two pieces of background work.
BACKGROUND_LOOK = 0.05
#: What a folder watch reports: files created, written, closed or moved in (folders too).
MASK = inotify.IN_CREATE | inotify.IN_MODIFY | inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO


class Changes:
    """The ``.g3`` paths changed since the last batch: filled by the reactor, drained by the scanner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._paths: Set[str] = set()
        self._first = self._last = 0.0
        #: set when the kernel's event queue overflowed: events were lost, only a full pass finds them
        self.lost = threading.Event()

    def add(self, path: str) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._paths:
                self._first = now
            self._paths.add(path)
            self._last = now
        self._wake.set()

    def overflowed(self) -> None:
        """The kernel dropped events: ask the scanner for a full pass now (from the reactor)."""
        self.lost.set()
        self._wake.set()

    def take(self, stop: threading.Event, until: float) -> List[str]:
        """Wait (until ``until``, a monotonic time, or ``stop``) for a batch; return it, debounced
        (empty when the time ran out)."""
        while not stop.is_set() and not self.lost.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return []
            if not self._wake.wait(min(left, STOP_CHECK)):
                continue
            with self._lock:
                now = time.monotonic()
                ready = now - self._last >= DEBOUNCE or now - self._first >= MAX_DELAY
                if ready:
                    paths, self._paths = sorted(self._paths), set()
                    self._wake.clear()
                    return paths
                pause = min(DEBOUNCE - (now - self._last), MAX_DELAY - (now - self._first))
            stop.wait(max(pause, 0.01))
        return []


class TreeWatcher:
    """inotify watches on ``directory`` and every folder below it, now and as they appear."""

    def __init__(self, directory, changes: Changes) -> None:
        self.directory = FilePath(str(directory))
        self.changes = changes
        self.folders = 0

    def start(self) -> None:
        """Watch the tree (in the reactor thread); an error (no inotify, too many watches) raises."""
        ensure_reactor_thread()
        in_reactor(self._start, timeout=120.0)
        self.folders = sum(1 for _ in os.walk(str(self.directory.path)))

    def _start(self) -> None:
        notifier = CountingINotify(self.changes.overflowed)
        notifier.startReading()
        notifier.watch(self.directory, mask=MASK, autoAdd=True, callbacks=[self._event], recursive=True)

    def _event(self, _watch, path: FilePath, mask: int) -> None:
        name = path.path.decode(errors="surrogateescape") if isinstance(path.path, bytes) else path.path
        if name.endswith(".g3") and not mask & inotify.IN_ISDIR:
            scanner_metrics.WATCH_EVENTS.inc()
            self.changes.add(name)


class CountingINotify(inotify.INotify):
    """Twisted's INotify, counting the kernel's queue overflows, which it drops unseen (their
    watch descriptor is -1), and calling ``overflowed`` for each: the lost events need a full pass."""

    def __init__(self, overflowed: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.overflowed = overflowed

    def _doRead(self, in_: bytes) -> None:
        # the kernel hands whole events to each read: walk their headers (wd, mask, cookie, len)
        offset = 0
        while offset + 16 <= len(in_):
            _wd, mask, _cookie, size = struct.unpack_from("=iIII", in_, offset)
            if mask & inotify.IN_Q_OVERFLOW:
                scanner_metrics.WATCH_OVERFLOWS.inc()
                self.overflowed()
            offset += 16 + size
        super()._doRead(in_)


def follow(directory, logger) -> Optional[Changes]:
    """Start watching ``directory``; the changes to scan, or None (logged) when inotify cannot be
    used here, so that the periodic pass alone keeps the index current."""
    changes = Changes()
    watcher = TreeWatcher(directory, changes)
    try:
        watcher.start()
    except Exception as exc:  # no inotify (not Linux), the watch limit, an unreadable folder
        logger.warn("cannot watch {directory} ({error}); new frames wait for the periodic pass",
                    directory=str(directory), error=f"{type(exc).__name__}: {exc}")
        return None
    scanner_metrics.WATCHED.set(watcher.folders)
    logger.info("watching {n} folders under {directory}", n=watcher.folders, directory=str(directory))
    return changes


def scan_changes(changes: Changes, scan: Callable[[List[str]], object], refresh: Callable[[], object],
                 seconds: float, stop: threading.Event, logger,
                 background: Optional[Callable[[], bool]] = None) -> None:
    """Scan each batch of changed files as it comes, for ``seconds`` or until ``stop`` (or at once when
    the kernel dropped events: the caller's full pass follows); refresh the coarse summary tiers at
    most every REFRESH_EVERY seconds when something was scanned. Between batches, while nothing
    changed, ``background`` does a piece of its work (an upgrade) until it says there is none left."""
    until = time.monotonic() + seconds
    last_refresh, pending_refresh = time.monotonic(), False
    busy = background is not None
    while not stop.is_set() and time.monotonic() < until:
        if changes.lost.is_set():  # the kernel dropped events: the caller's full pass finds what they held
            changes.lost.clear()
            logger.warn("the inotify event queue overflowed: a full pass now")
            return  # the pass refreshes the coarse tiers too
        wait = min(until, last_refresh + REFRESH_EVERY) if pending_refresh else until
        paths = changes.take(stop, min(wait, time.monotonic() + BACKGROUND_LOOK) if busy else wait)
        try:
            if paths:
                scan(paths)
                pending_refresh = True
            if pending_refresh and time.monotonic() - last_refresh >= REFRESH_EVERY:
                refresh()
                last_refresh, pending_refresh = time.monotonic(), False
        except Exception as exc:  # the database away: the files are scanned by the next pass
            logger.error("scan of changed files failed: {error}; the next pass reads them",
                         error=f"{type(exc).__name__}: {exc}")
            stop.wait(min(5.0, max(until - time.monotonic(), 0)))
        if busy and not paths and background is not None:
            busy = _piece(background, stop, logger)


def background(work: Optional[Callable[[], bool]], seconds: float, stop: threading.Event, logger) -> None:
    """Without inotify: ``work``'s pieces (an upgrade) until it is done, then wait out ``seconds``."""
    until = time.monotonic() + seconds
    while work is not None and not stop.is_set() and time.monotonic() < until and _piece(work, stop, logger):
        pass
    stop.wait(max(until - time.monotonic(), 0))


def _piece(work: Callable[[], bool], stop: threading.Event, logger) -> bool:
    """One piece of background work; whether more is left (after a failure: yes, after a pause)."""
    try:
        return work()
    except Exception as exc:  # the database away: the work goes on where it stopped
        logger.error("background work failed: {error}; trying again soon", error=f"{type(exc).__name__}: {exc}")
        stop.wait(5.0)
        return True
