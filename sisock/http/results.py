"""Finalized results kept: a repeated panel asks its data nodes only for what may have changed.

A dashboard refreshed every 10 s, alert rules every minute and many operators
ask the same panels again and again, and each time every slot was reduced again
and crossed the router (20 to 40 ms of a warm panel). But a slot that ends by a
timeline's ``finalized_until`` never changes while the node's ``revision`` of it
stays the same (:mod:`sisock.g3.revisions`: it changes whenever rows the archive
held change; appends only move ``finalized_until``), and slots are independent:
the answer over a window is, slot by slot, the answers over any cut of it on the
slot grid (:mod:`sisock.decimate`).

So for each ``(node, field, step)`` what is final is kept (:class:`Kept`): the
reduced points of whole slots, and of the last window's partial first and last
slots (a panel asked again over the same window). A panel that finds some asks
the node, in its one call, only for the rest: ``get_data``'s ``cut=[a, b]``
leaves out the kept slots ``[a, b)`` (at most the part of a slot the window
starts in, and the live edge), and the answer is stitched to the kept points:
exactly the node's answer over the whole window. The call's answer carries the
revision; if it is not the kept one, the field is asked again over the whole
window and what was kept is replaced. Only a timeline that holds one field and
carries a revision (the g3-reader's decimated numeric fields) is kept; everything
else is asked as before. Memory is bounded by ``HTTP_CACHE_MB`` (least recently
used dropped first); a field keeps the slots of at most :data:`KEEP_WINDOWS` windows.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from sisock.http.answers import Rows, series_json
from sisock.http.fanout import Call
from sisock.lru import SizedLRU

#: A field keeps the slots of at most this many of its latest windows (panels move on; older slots are not asked).
KEEP_WINDOWS = 4
#: Bytes a kept entry costs besides its arrays.
ENTRY_BYTES = 512
#: A stitched timeline's key (sisock-http's own) for the JSON of its points, written part by part:
#: kept slots are written once (:class:`sisock.http.answers.Rows`), so only the fresh edges cost.
WRITTEN = "written"

#: Issues calls (the first round also carries the live part of joined names): one answer each, None for no node.
Issue = Callable[[List[Call], bool], List[Optional[dict]]]


class Points(NamedTuple):
    """Reduced points of the window ``[w0, w1)``; kept ones also as JSON (``rows``, from its point ``first``)."""

    w0: float
    w1: float
    t: np.ndarray
    v: np.ndarray
    rows: Optional[Rows] = None
    first: int = 0

    def between(self, a: float, b: float) -> "Points":
        """The points in ``[a, b)`` (slot keys agree with these bounds: they are multiples of the step)."""
        i, j = np.searchsorted(self.t, (a, b))
        return Points(a, b, self.t[i:j], self.v[i:j], self.rows, self.first + int(i))

    def written(self) -> "Points":
        """These points with their JSON written (once: kept points are asked again and again)."""
        return self if self.rows is not None else self._replace(rows=Rows.of(self.t, self.v), first=0)

    def json(self) -> Optional[bytes]:
        """The JSON of the points without the array's brackets (None for values not written as numbers)."""
        if self.rows is not None:
            return self.rows.inner(self.first, self.first + len(self.t))
        text = series_json(self.t, self.v)
        return None if text is None else text[1:-1]

    @property
    def nbytes(self) -> int:
        return self.t.nbytes + self.v.nbytes + (self.rows.nbytes if self.rows is not None else 0)


@dataclass(frozen=True)
class Kept:
    """What is final of one field at one step, as of ``revision``: whole slots (``slots``: a multiple of
    the step to another), and the partial first (``head``) and last (``tail``) slot of the last window."""

    revision: int
    slots: Optional[Points] = None
    head: Optional[Points] = None
    tail: Optional[Points] = None

    @property
    def nbytes(self) -> int:
        return ENTRY_BYTES + sum(p.nbytes for p in (self.slots, self.head, self.tail) if p is not None)


class Series(NamedTuple):
    """One field of an answer, as kept: its points, its timeline's ``finalized_until`` and revision."""

    t: np.ndarray
    v: np.ndarray
    until: float
    revision: int


class Plan(NamedTuple):
    """How one field of a window is answered: kept points for ``[ca, cb)`` (the parts between), the rest asked."""

    kept: Kept
    a: float  # the kept whole slots are [a, b)
    b: float
    ca: float  # the call leaves out [ca, cb): ca is the window's start when the kept head answers it
    cb: float


class Note:
    """What the cache did for one query (the ``Server-Timing`` description)."""

    def __init__(self) -> None:
        self.fields = self.hits = self.again = self.points = self.kept_points = 0
        self.seconds = 0.0  # spent stitching and keeping

    def text(self) -> str:
        again = f", {self.again} revised" if self.again else ""
        return f"{self.hits}/{self.fields} fields from kept slots, {self.kept_points}/{self.points} points{again}"


class Results:
    """What is final of every ``(node, field, step)``, within ``capacity`` bytes (0: nothing kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.kept: SizedLRU[Kept] = SizedLRU(capacity)
        self._lock = threading.Lock()

    def fetch(self, wanted: Dict[str, List[str]], start: float, end: float, step: Optional[float],
              issue: Issue) -> Tuple[Dict[str, dict], Note]:
        """Each node's ``get_data`` answer for its fields over ``[start, end)`` at ``step``, as one call
        per node would give it, from kept points and the calls ``issue`` makes for the rest."""
        note = Note()
        on = self.capacity > 0 and step is not None and step >= 1 and float(step).is_integer()
        width = float(step) if on and step is not None else 0.0  # on the decimation grid: whole seconds
        calls: List[Tuple[Call, Dict[str, Plan]]] = []
        for node, fields in wanted.items():
            whole: List[str] = []
            by_cut: Dict[Tuple[float, float], Dict[str, Plan]] = {}
            for name in fields:
                kept = self.kept.get((node, name, width)) if on else None
                plan = _plan(kept, start, end, width) if kept is not None else None
                if plan is None:
                    whole.append(name)
                else:
                    by_cut.setdefault((plan.ca, plan.cb), {})[name] = plan
            if whole:
                calls.append((Call(node, whole, start, end), {}))
            calls += [(Call(node, list(plans), start, end, cut), plans) for cut, plans in by_cut.items()]
        answers = issue([call for call, _ in calls], True)
        began = time.perf_counter()
        out: Dict[str, dict] = {}
        again: Dict[str, List[str]] = {}
        for (call, plans), answer in zip(calls, answers):
            if answer is None:
                continue  # no such node
            into = out.setdefault(call.node, {"data": {}, "timeline": {}})
            if not plans:
                into["timeline"].update(answer.get("timeline") or {})
                into["data"].update(answer.get("data") or {})
                if on:
                    self._keep_all(call, answer, width)
                continue
            for name, plan in plans.items():
                stitched = self._stitch(call, answer, name, plan, width, note)
                if stitched is None:
                    self.kept.drop((call.node, name, width))
                    again.setdefault(call.node, []).append(name)
                else:
                    into["timeline"][name], into["data"][name] = stitched
        note.seconds = time.perf_counter() - began
        if again:  # revised since they were kept: the whole window once more
            retry = [Call(node, names, start, end) for node, names in again.items()]
            for call, answer in zip(retry, issue(retry, False)):
                if answer is not None:
                    into = out.setdefault(call.node, {"data": {}, "timeline": {}})
                    into["timeline"].update(answer.get("timeline") or {})
                    into["data"].update(answer.get("data") or {})
                    self._keep_all(call, answer, width)
            note.again = sum(len(names) for names in again.values())
        note.fields = sum(len(fields) for fields in wanted.values())
        note.points = sum(len(t["t"]) for a in out.values() for t in a["timeline"].values())
        return out, note

    def _stitch(self, call: Call, answer: dict, name: str, plan: Plan, step: float,
                note: Note) -> Optional[Tuple[dict, np.ndarray]]:
        """``name``'s timeline and values: the answer's points before ``ca``, the kept head, the kept
        slots, the kept tail, the answer's points from ``cb`` on; None when the answer's revision is
        not the kept one (or its timeline not one that can be kept)."""
        fresh = _series(answer, name)
        if fresh is None or fresh.revision != plan.kept.revision:
            return None
        kept = plan.kept
        whole = Points(call.start, call.end, fresh.t, fresh.v)
        left, right = whole.between(call.start, plan.ca), whole.between(plan.cb, call.end)
        middle = [p for p in (kept.head if plan.ca < plan.a else None,
                              kept.slots.between(plan.a, plan.b) if kept.slots is not None else None,
                              kept.tail if plan.cb > plan.b else None) if p is not None]
        parts = [left, *middle, right]
        note.hits += 1
        note.kept_points += sum(len(p.t) for p in middle)
        self._keep(call.node, name, step, call.start, call.end, fresh, left if plan.ca == plan.a else None,
                   right if plan.cb == plan.b else None)
        timeline = {"t": np.concatenate([p.t for p in parts]), "finalized_until": fresh.until, "fields": [name],
                    "revision": kept.revision, WRITTEN: lambda: _written(parts)}
        return timeline, np.concatenate([p.v for p in parts])

    def _keep_all(self, call: Call, answer: dict, step: float) -> None:
        """Keep what is final of every field of a whole-window answer that can be kept."""
        for name in call.fields:
            series = _series(answer, name)
            if series is not None:
                whole = Points(call.start, call.end, series.t, series.v)
                self._keep(call.node, name, step, call.start, call.end, series, whole, whole)

    def _keep(self, node: str, name: str, step: float, start: float, end: float, series: Series,
              left: Optional[Points], right: Optional[Points]) -> None:
        """Keep what is final of the answered parts ``left`` (from the window's start) and ``right`` (to its
        end): their whole slots that end by ``finalized_until`` (joined to those kept when of the same
        revision and meeting them), the window's partial first slot, and its last one when it ends by it."""
        first, last = math.ceil(start / step) * step, math.floor(end / step) * step
        final = math.floor(series.until / step) * step
        found: List[Points] = []
        head = tail = None
        for part in (left,) if left is right else (left, right):
            if part is None:
                continue
            lo, hi = max(math.ceil(part.w0 / step) * step, first), min(math.floor(part.w1 / step) * step, last, final)
            if hi > lo:
                found.append(part.between(lo, hi))
        if left is not None and start < first <= min(left.w1, series.until):
            head = left.between(start, first)
        if right is not None and last < end <= series.until and right.w0 <= last:
            tail = right.between(last, end)
        key = (node, name, step)
        with self._lock:  # two queries joining their slots at once would lose one's
            old = self.kept.get(key)
            same = old is not None and old.revision == series.revision
            slots = old.slots if same and old is not None else None
            for piece in found:
                slots = _joined(slots, piece)
            if slots is not None:
                oldest = slots.w1 - KEEP_WINDOWS * max(step, math.ceil((end - start) / step) * step)
                if slots.w0 < oldest:  # slots no recent window reached
                    slots = slots.between(oldest, slots.w1)
            new = Kept(series.revision, slots.written() if slots is not None else None,
                       head or (old.head if same and old is not None else None),
                       tail or (old.tail if same and old is not None else None))
            self.kept.put(key, new.nbytes, new)


def _written(parts: List[Points]) -> Optional[List[bytes]]:
    """The JSON of a stitched series, part by part (:class:`sisock.http.answers.Entry`'s ``parts``)."""
    texts = [p.json() for p in parts]
    return None if any(text is None for text in texts) else texts  # type: ignore[return-value]


def _joined(kept: Optional[Points], new: Points) -> Points:
    """``new`` slots joined to ``kept`` ones when they meet (else ``new`` alone: the latest are kept)."""
    if kept is None or new.w0 > kept.w1 or new.w1 < kept.w0:
        return new
    before, after = kept.between(kept.w0, new.w0), kept.between(new.w1, kept.w1)
    return Points(min(kept.w0, new.w0), max(kept.w1, new.w1), np.concatenate([before.t, new.t, after.t]),
                  np.concatenate([before.v, new.v, after.v]))


def _plan(kept: Kept, start: float, end: float, step: float) -> Optional[Plan]:
    """How ``kept`` answers the window, or None when it holds none of its whole slots."""
    if kept.slots is None:
        return None
    first, last = math.ceil(start / step) * step, math.floor(end / step) * step
    a, b = max(first, kept.slots.w0), min(last, kept.slots.w1)
    if b <= a:
        return None
    head, tail = kept.head, kept.tail
    ca = start if a == first and head is not None and (head.w0, head.w1) == (start, first) else a
    cb = end if b == last and tail is not None and (tail.w0, tail.w1) == (last, end) else b
    return Plan(kept, a, b, ca, cb)


def _series(answer: Optional[dict], name: str) -> Optional[Series]:
    """``name`` of an answer when it is alone on a timeline that carries a revision and numbers."""
    if not isinstance(answer, dict):
        return None
    timeline = (answer.get("timeline") or {}).get(name)
    if not isinstance(timeline, dict) or timeline.get("fields") != [name] or timeline.get("revision") is None \
            or timeline.get("finalized_until") is None:
        return None
    t = np.asarray(timeline.get("t") if timeline.get("t") is not None else [], dtype=float)
    v = np.asarray((answer.get("data") or {}).get(name, []))
    if v.dtype.kind not in "fiu" or len(v) != len(t):
        return None
    return Series(t, v.astype(float, copy=False), float(timeline["finalized_until"]), int(timeline["revision"]))

