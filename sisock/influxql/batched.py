"""Bucket requests that a query's statements make together, asked of the source as one.

A Grafana panel of 8 fields is 8 statements in one request, and each asks the source for the
same buckets (the same edges and columns) of its own field: 8 trips through the router to the
same data node, each reading the frames at the window's edges again. The executor runs the
statements concurrently, each inside :meth:`Batched.statement`; once every running statement (a
statement counts from when a worker is free for it, not from when its thread begins) is waiting
on the source, the waiting bucket requests with the same edges and columns become one, for the
union of their fields, made by one of them, and each statement takes its own fields' buckets.
There is no timer: a request is held only while another running statement has yet to reach the
source, so a lone statement never waits. When a merged request fails, each statement asks alone,
so one node's failure is still the error of only the statements that read it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from sisock.influxql.source import Buckets, FieldRef, Source


class _Ask:
    """One statement's bucket request; ``lead`` is the request of its group that asks the source."""

    def __init__(self, fields: List[FieldRef], edges: np.ndarray, columns: Tuple[str, ...]) -> None:
        self.fields, self.edges, self.columns = fields, edges, columns
        self.lead: Optional[_Ask] = None
        self.group: List[_Ask] = []
        self.done = False
        self.found: Optional[Dict[FieldRef, Buckets]] = None
        self.error: Optional[BaseException] = None

    @property
    def key(self) -> Tuple[bytes, Tuple[str, ...]]:
        return self.edges.tobytes(), self.columns

    def ask(self, source: Source) -> None:
        """The group's request, for the union of its fields (as the lead)."""
        fields = list(dict.fromkeys(f for member in self.group for f in member.fields))
        try:
            self.found = source.buckets(fields, self.edges, self.columns)
        except Exception as exc:  # alone, its own error; merged, each member asks alone
            self.error = exc

    def answer(self, source: Source) -> Dict[FieldRef, Buckets]:
        """This request's buckets, from its lead's answer (asked alone when a merged one failed)."""
        lead = self.lead
        assert lead is not None and lead.done
        if lead.found is None:
            if lead.error is not None and len(lead.group) == 1:
                raise lead.error
            return source.buckets(self.fields, self.edges, self.columns)
        return {f: lead.found[f] for f in self.fields if f in lead.found}


class Batched:
    """A :class:`~sisock.influxql.source.Source` for one query's concurrent statements (see the module)."""

    def __init__(self, source: Source, statements: int, at_once: int) -> None:
        self.source = source
        self._lock = threading.Condition()
        self._unfinished = statements  # statements not ended
        self._at_once = at_once  # statements run at once: a worker that ends one begins the next
        self._inside = 0  # running statements inside a call of the source (waiting, asking or reading)
        self._waiting: List[_Ask] = []

    @contextmanager
    def statement(self) -> Iterator[None]:
        """Run one of the statements: its bucket requests may be merged with the others'."""
        try:
            yield
        finally:
            with self._lock:
                self._unfinished -= 1
                self._release()

    def catalogue(self) -> List[FieldRef]:
        return self.source.catalogue()

    def samples(self, fields: List[FieldRef], start: int, end: int,
                limit: int) -> Dict[FieldRef, Tuple[np.ndarray, np.ndarray]]:
        with self._lock:
            self._inside += 1
            self._release()
        try:
            return self.source.samples(fields, start, end, limit)
        finally:
            with self._lock:
                self._inside -= 1

    def buckets(self, fields: List[FieldRef], edges: np.ndarray, columns: Sequence[str]) -> Dict[FieldRef, Buckets]:
        ask = _Ask(list(fields), np.asarray(edges, dtype=np.int64), tuple(columns))
        with self._lock:
            self._inside += 1
            self._waiting.append(ask)
            self._release()
            while ask.lead is None:
                self._lock.wait()
        try:
            lead = ask.lead
            if lead is ask:
                try:
                    ask.ask(self.source)
                finally:
                    with self._lock:
                        ask.done = True
                        self._lock.notify_all()
            else:
                with self._lock:
                    while not lead.done:
                        self._lock.wait()
            return ask.answer(self.source)
        finally:
            with self._lock:
                self._inside -= 1

    def _release(self) -> None:
        """With the lock held: once no running statement is outside the source, the waiting requests
        go, one per distinct edges and columns."""
        if not self._waiting or self._inside < min(self._at_once, self._unfinished):
            return
        groups: Dict[Tuple[bytes, Tuple[str, ...]], List[_Ask]] = {}
        for ask in self._waiting:
            groups.setdefault(ask.key, []).append(ask)
        self._waiting = []
        for group in groups.values():
            group[0].group = group
            for ask in group:
                ask.lead = group[0]
        self._lock.notify_all()
