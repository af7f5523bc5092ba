"""One line per event, prefixed with the component name, on standard error.

Under systemd standard error goes to the journal, which adds the time; when
run by hand (or by ``sisock demo``) we add a UTC time ourselves.
"""
from __future__ import annotations

import os
import re
import sys
import time
from typing import List, Optional, TextIO

import txaio
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)

_LEVELS = {
    "critical": LogLevel.critical,
    "error": LogLevel.error,
    "warn": LogLevel.warn,
    "info": LogLevel.info,
    "debug": LogLevel.debug,
    "trace": LogLevel.debug,
}

_started = False


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(text: str) -> str:
    """Fold a multi-line message (a traceback) onto one line, without terminal colours."""
    return " | ".join(part for part in _ANSI.sub("", text).splitlines() if part.strip())


#: Library lines that tell an operator nothing: shown at ``debug`` only. autobahn
#: warns "trying transport 0 ..." on every normal connect and logs each step of
#: giving up; a router certificate we do not trust is reported once, by sisock,
#: as a configuration error; Twisted announces the end of its loop.
QUIET_LINES = (
    re.compile(r"^trying transport \d+ "),
    re.compile(r"^connecting once using transport "),
    re.compile(r"certificate verify failed"),
    re.compile(r"^Connection failed: VerificationError"),
    re.compile(r"^Error was fatal; failing transport$"),
    re.compile(r"^Component failed: Exhausted all transport connect attempts$"),
    re.compile(r"^Main loop terminated\.$"),
)


#: Lines that tell nothing once the process is stopping for a reason it has said (another
#: component's connection cut short by the stop).
QUIET_WHEN_STOPPING = (re.compile(r"^Connection failed: "),)
_stopping: List[bool] = []


def stopping() -> None:
    """The process is stopping for a reason already said: quiet what the stop itself causes."""
    _stopping.append(True)


def relevel(observer):
    """An observer that hands ``observer`` the QUIET_LINES (and, once :func:`stopping`, the
    QUIET_WHEN_STOPPING) at debug level."""
    def observe(event: dict) -> None:
        if event.get("log_level", LogLevel.info) > LogLevel.debug:
            text = formatEvent(event) or ""
            quiet = QUIET_LINES + (QUIET_WHEN_STOPPING if _stopping else ())
            if any(pattern.search(text) for pattern in quiet):
                event = dict(event, log_level=LogLevel.debug)
        observer(event)

    return observe


class LineObserver:
    """A Twisted log observer writing ``[time] component level: message``."""

    def __init__(self, component: str, stream: TextIO, with_time: bool) -> None:
        self.component = component
        self.stream = stream
        self.with_time = with_time

    def __call__(self, event: dict) -> None:
        text = formatEvent(event) or ""
        failure = event.get("log_failure")
        if failure is not None:
            text = f"{text} {failure.getTraceback()}"
        level = event.get("log_level", LogLevel.info).name
        prefix = (time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime(event.get("log_time", time.time())))
                  if self.with_time else "")
        self.stream.write(f"{prefix}{self.component} {level}: {one_line(text)}\n")
        self.stream.flush()


def start(component: str, level: str = "info", stream: Optional[TextIO] = None) -> None:
    """Send every Twisted and txaio log event of this process through one observer."""
    global _started
    txaio.use_twisted()
    txaio.set_global_log_level(level)  # type: ignore[attr-defined]  # use_twisted() defines it
    if _started:
        return
    _started = True
    stream = stream or sys.stderr
    with_time = "JOURNAL_STREAM" not in os.environ
    predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS.get(level, LogLevel.critical))
    # zope interfaces: mypy cannot see that LineObserver and the predicate provide them
    observer = FilteringLogObserver(LineObserver(component, stream, with_time),  # type: ignore[arg-type]
                                    [predicate])  # type: ignore[list-item]
    globalLogBeginner.beginLoggingTo([relevel(observer)], redirectStandardIO=False, discardBuffer=True)


def logger() -> "txaio.interfaces.ILogger":
    """A txaio logger for a module."""
    return txaio.make_logger()  # type: ignore[attr-defined]  # use_twisted() defines it


class Throttle:
    """At most one log line per ``interval`` seconds for each kind of repeated event,
    so a misbehaving peer cannot flood the journal; counts what it held back."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict = {}
        self._held: dict = {}

    def allow(self, kind: str) -> int:
        """-1 to stay quiet; otherwise the number of events of this kind held back since the last line."""
        now = time.monotonic()
        if now - self._last.get(kind, -self.interval) < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return -1
        self._last[kind] = now
        return self._held.pop(kind, 0)

    def warn(self, logger, kind: str, text: str, quiet: str = "debug", **fields) -> None:
        """``text`` as a warning on ``logger``, or at level ``quiet`` if one of this ``kind`` was
        logged within ``interval``; the warning says how many it held back."""
        held = self.allow(kind)
        if held < 0:
            getattr(logger, quiet)(text, **fields)
        else:
            logger.warn(text + (" ({held} similar held back)" if held else ""), held=held, **fields)
