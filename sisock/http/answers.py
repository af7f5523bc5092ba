"""Large ``/query`` answers: few at once, and written as JSON from numpy arrays chunk by chunk.

A panel answer is small; an export of a day at full rate is tens of MB. Built as Python
lists, one such answer took 55 MB and a second of CPU, and memory grew with every slow
client that asked for one. So:

- a query that may hold more than :data:`BIG_POINTS` points (its targets' ``maxDataPoints``,
  or no cap) is *big*, and takes one of :data:`BIG_SLOTS` slots from before its fan-out to
  the end of its answer; a big query that finds none free within ``HTTP_TIMEOUT``, or finds
  :data:`BIG_WAITING` big queries already waiting, gets 503 (with ``Retry-After``) at once. A
  waiting query holds one of sisock-http's worker threads, so without that bound a burst of
  exports held them all and small queries waited ``HTTP_TIMEOUT`` behind it; with it a burst
  costs a bounded share of the threads, the CPU and the memory;
- a big answer keeps its series as numpy arrays (16 bytes a point) and is written as JSON
  :data:`CHUNK_POINTS` points at a time while the client reads it (HTTP chunked encoding),
  never whole in memory; a client must read it at :data:`MIN_READ_RATE` on average (after
  ``HTTP_BODY_TIMEOUT`` of grace), or its connection is closed;
- when the last big answer is done, freed memory goes back to the system (``malloc_trim``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import Iterable, Iterator, List, Optional

import numpy as np
import orjson

from sisock.http.errors import RequestError

#: A query that may hold more points than this is big.
BIG_POINTS = 100_000
#: Big queries answered at once.
BIG_SLOTS = 2
#: Big queries that may wait for a slot (each holds a worker thread); more are refused at once.
BIG_WAITING = 2
#: Points encoded at a time (about 2 MB of JSON).
CHUNK_POINTS = 65_536
#: Bytes per second a client must read a big answer at, on average.
MIN_READ_RATE = 256 * 1024


class Busy(RequestError):
    """Every slot for big answers is taken: try again shortly."""

    status = 503


class BigAnswers:
    """The slots of big answers; memory is given back when the last one ends."""

    def __init__(self, slots: int = BIG_SLOTS, waiting: int = BIG_WAITING) -> None:
        self.slots = slots
        self.waiting = waiting
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._busy = 0
        self._waiters = 0

    def take(self, timeout: float) -> None:
        """Hold a slot; Busy if none is free within ``timeout`` seconds, or at once when
        :attr:`waiting` queries already wait for one."""
        if not self._free.acquire(blocking=False):
            with self._lock:
                full = self._waiters >= self.waiting
                self._waiters += not full
            if full or not self._wait(timeout):
                raise Busy(f"{self.slots} large answers (queries of more than {BIG_POINTS} points) are being "
                           f"served; try again in a few seconds, or lower the panel's Max data points")
        with self._lock:
            self._busy += 1

    def _wait(self, timeout: float) -> bool:
        """Wait as one of the :attr:`waiting` for a slot; True once it is held."""
        try:
            return self._free.acquire(timeout=timeout)
        finally:
            with self._lock:
                self._waiters -= 1

    def give(self) -> None:
        """Free a slot taken with :meth:`take`."""
        with self._lock:
            self._busy -= 1
            last = self._busy == 0
        self._free.release()
        if last:
            give_memory_back()

    @property
    def busy(self) -> int:
        """Slots held now."""
        return self._busy


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def give_memory_back() -> None:
    """Return the heap's free pages to the system (glibc keeps them otherwise, and a burst of
    large answers would leave the process at its peak size for good)."""
    try:
        _libc.malloc_trim(0)
    except AttributeError:  # not glibc
        pass


class Entry:
    """One target's answer: its numpy times (s) and values, as a time series or a table. ``parts``, when
    given, is the JSON of its points already written, run by run in order, each without its brackets
    (:class:`Rows`)."""

    __slots__ = ("target", "t", "values", "table", "parts")

    def __init__(self, target: str, t: np.ndarray, values: np.ndarray, table: bool,
                 parts: Optional[List[bytes]] = None) -> None:
        self.target, self.t, self.values, self.table = target, t, values, table
        self.parts = None if table else parts

    def head(self) -> bytes:
        """The JSON of the entry up to its first point."""
        if self.table:
            kind = "number" if self.values.dtype.kind in "biuf" else "string"
            columns = [{"text": "Time", "type": "time"}, {"text": self.target, "type": kind}]
            return orjson.dumps({"type": "table", "columns": columns})[:-1] + b',"rows":['
        return orjson.dumps({"target": self.target})[:-1] + b',"datapoints":['

    def points(self, a: int, b: int) -> bytes:
        """Points ``a`` to ``b`` as Grafana wants them, a JSON array of ``[value, ms]`` (``[ms, value]``
        in a table). A time series of numbers is written by orjson straight from numpy (building a
        tuple per point and encoding them was a third of a cached panel's time)."""
        if self.parts is not None and (a, b) == (0, len(self.t)):
            return b"[" + b",".join(part for part in self.parts if part) + b"]"
        fast = None if self.table else series_json(self.t[a:b], self.values[a:b])
        if fast is not None:
            return fast
        ms = np.rint(self.t[a:b] * 1000.0).astype(np.int64).tolist()
        values = self.values[a:b].tolist()
        return orjson.dumps(list(zip(ms, values)) if self.table else list(zip(values, ms)))

    def as_dict(self) -> dict:
        """The whole entry, for a small answer encoded in one go (its points already JSON)."""
        rows = orjson.Fragment(self.points(0, len(self.t)))
        if self.table:
            kind = "number" if self.values.dtype.kind in "biuf" else "string"
            return {"type": "table", "columns": [{"text": "Time", "type": "time"}, {"text": self.target, "type": kind}],
                    "rows": rows}
        return {"target": self.target, "datapoints": rows}


#: Times (ms) orjson writes positionally as floats ("1700000000000.0"); from 1e16 on it writes an exponent.
_POSITIONAL_MS = 1e15


def series_json(t: np.ndarray, values: np.ndarray) -> Optional[bytes]:
    """``[[value, ms], ...]`` of numeric ``values`` at times ``t`` (s), the same bytes orjson gives for the
    Python numbers; None for other values (text, booleans, unsigned 64-bit) or times it would not write
    positionally."""
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind == "i" or (kind == "u" and size < 8):
        return orjson.dumps(np.column_stack((values.astype(np.int64, copy=False),
                                             np.rint(t * 1000.0).astype(np.int64))), option=_NUMPY)
    if kind != "f" or size > 8:
        return None
    ms = np.rint(t * 1000.0) + 0.0  # + 0.0: no "-0"
    if len(ms) and not np.abs(ms).max() < _POSITIONAL_MS:
        return None
    # a float time is written "…000.0", and only times are followed by "]"
    return orjson.dumps(np.column_stack((values.astype(np.float64, copy=False), ms)),
                        option=_NUMPY).replace(b".0]", b"]")


_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class Rows:
    """The JSON of a long-lived numeric series' points (:func:`series_json`), written once: that of
    any run of them is a slice. sisock-http's kept slots (:mod:`sisock.http.results`) are written
    this way, so a repeated panel writes only its fresh edges."""

    __slots__ = ("text", "starts")

    def __init__(self, text: bytes) -> None:
        self.text = text
        # where each point's "[" is (a number or null holds none), and the closing "]" after the last
        starts = np.flatnonzero(np.frombuffer(text, np.uint8) == ord("["))[1:]
        self.starts = np.append(starts, len(text))

    @classmethod
    def of(cls, t: np.ndarray, values: np.ndarray) -> Optional["Rows"]:
        """The points' JSON, or None for values :func:`series_json` does not write."""
        text = series_json(t, values)
        return None if text is None else cls(text)

    def inner(self, i: int, j: int) -> bytes:
        """The JSON of points ``i`` to ``j`` without the array's brackets."""
        return self.text[self.starts[i]:self.starts[j] - 1] if j > i else b""

    @property
    def nbytes(self) -> int:
        return len(self.text) + self.starts.nbytes


def chunks(entries: List[Entry]) -> Iterator[bytes]:
    """The JSON of ``entries`` (a list) in pieces of at most CHUNK_POINTS points: the same bytes
    as encoding them whole."""
    yield b"["
    for i, entry in enumerate(entries):
        yield (b"," if i else b"") + entry.head()
        n = len(entry.t)
        for a in range(0, n, CHUNK_POINTS):
            body = entry.points(a, min(a + CHUNK_POINTS, n))[1:-1]
            yield (b"," if a else b"") + body
        yield b"]}"
    yield b"]"


def paced(pieces: Iterable[bytes], grace: float, on_end) -> Iterator[bytes]:
    """``pieces`` as long as the client reads them at MIN_READ_RATE on average after ``grace``
    seconds (else the answer stops short, which closes the connection); ``on_end(sent bytes,
    complete)`` once, however it ends."""
    began, sent, complete = time.monotonic(), 0, False
    try:
        for piece in pieces:
            allowed = grace + sent / MIN_READ_RATE
            if time.monotonic() - began > allowed:
                return
            yield piece
            sent += len(piece)
        complete = True
    finally:
        on_end(sent, complete)


def possible_points(max_points: Optional[int], targets: int) -> float:
    """The most points a query's answer may hold: each target at most ``maxDataPoints``."""
    return float("inf") if max_points is None else float(max_points) * targets
