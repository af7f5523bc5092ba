"""One series per name: the archive (``g3_reader``) and the live feeds (data-feed) joined.

A target without ``::`` is an archive full name, ``observatory.<agent>.feeds.<feed>.<key>``.
Its series is the union of what both sources hold, each sample once: every archived sample,
and every live sample (of every live node that serves the name: a data-feed instance answers
under the archive's names too) outside the time ranges the archive covers (its provider's
indexed frames, :meth:`~sisock.g3.reader.Reader.coverage`). So live samples fill in before the
archive's first sample, in the archive's holes (an aggregator outage) and after its newest
frame, and none is taken twice. The live nodes leave those ranges out themselves
(``get_data``'s ``exclude``), before they decimate; both sources reduce on the same aligned
grid (:mod:`sisock.decimate`), so the joined series reduced once more is exactly the
reduction of all the samples. Live nodes are asked only over the live horizon (``BUFFER_TIME``
seconds before now, and :data:`HORIZON_SLACK`: what a feed can hold).

Listing: each archive full name once, bare, with units where either source knows them;
the live nodes' archive-named aliases are left out (their own lower-cased names stay).
"""
from __future__ import annotations

import math
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sisock.decimate import choose_step, decimate_columns, reduce_to_step
from sisock.http.errors import NodeFailed

#: The data node that serves the archive.
ARCHIVE_NODE = "g3_reader"
#: Seconds before the live horizon (``BUFFER_TIME`` before now) that live feeds are still asked
#: for: a feed trims its buffer when it receives or is asked for its fields, so it may hold a
#: little more than ``BUFFER_TIME``.
HORIZON_SLACK = 120.0
#: An archive full name: the aggregator's provider address and the field key.
FULL_NAME = re.compile(r"observatory\.[^\s.#]+\.feeds\.[^\s.#]+\.[^\s#]+")

Series = Tuple[np.ndarray, np.ndarray]


def is_full_name(text: str) -> bool:
    """True for ``observatory.<agent>.feeds.<feed>.<key>``."""
    return FULL_NAME.fullmatch(text) is not None


def listing(entries: Sequence[Tuple[str, dict]]) -> List[Tuple[str, dict]]:
    """``/search`` and ``/metrics`` entries: the catalogue's ``node::field`` pairs with each archive
    full name added once, bare, and the live nodes' aliases of archive names left out."""
    joined: Dict[str, dict] = {}
    for name, info in entries:
        node, _, field = name.partition("::")
        if node == ARCHIVE_NODE and is_full_name(field):
            joined[field] = dict(info)
    out = []
    for name, info in entries:
        node, _, field = name.partition("::")
        if node != ARCHIVE_NODE and is_full_name(field):
            if field in joined and info.get("units") and not joined[field].get("units"):
                joined[field]["units"] = info["units"]
            continue
        out.append((name, info))
    out.extend(joined.items())
    return sorted(out, key=lambda pair: pair[0])


def live_plan(names: Sequence[str], serving: Callable[[str], List[str]]) -> Dict[str, List[str]]:
    """The joined names each live node (every node serving one, but the archive) is asked for."""
    out: Dict[str, List[str]] = {}
    for name in names:
        for node in serving(name):
            if node != ARCHIVE_NODE and name not in out.setdefault(node, []):
                out[node].append(name)
    return {node: fields for node, fields in out.items() if fields}


def field_of(node: str, answer: Optional[dict], name: str) -> Tuple[np.ndarray, np.ndarray]:
    """One field of one node's ``get_data`` answer: its times and values."""
    if not isinstance(answer, dict):
        return np.empty(0), np.empty(0)
    data = answer.get("data")
    if not isinstance(data, dict):
        data = {}
    for timeline in (answer.get("timeline") or {}).values():
        if isinstance(timeline, dict) and name in (timeline.get("fields") or []) and name in data:
            t = np.asarray(timeline["t"] if timeline.get("t") is not None else [], dtype=float)
            values = _values(data[name])
            if len(values) != len(t):
                raise NodeFailed(f"data node {node}: field {name!r} has {len(values)} values for {len(t)} times")
            return t, values
    return np.empty(0), np.empty(0)


def _values(values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def _union(parts: List[Tuple[np.ndarray, np.ndarray]]) -> Series:
    """Pieces of one field joined in time order, a time held by several pieces kept once."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.empty(0), np.empty(0)
    t = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts]) if all(p[1].dtype.kind == "f" for p in parts) else \
        np.concatenate([p[1].astype(object) for p in parts])
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    first = np.ones(len(t), dtype=bool)
    first[1:] = t[1:] != t[:-1]
    return t[first], v[first]


def union_of(name: str, archive: Optional[dict], live: Dict[str, List[dict]]) -> Series:
    """``name``'s samples in the archive's answer and the live nodes' answers (which left out the
    archive's coverage), in time order, one sample per time."""
    parts = [field_of(ARCHIVE_NODE, archive, name)]
    parts += [field_of(node, answer, name) for node, answers in live.items() for answer in answers]
    return _union(parts)


def series(name: str, archive: Optional[dict], live: Dict[str, List[dict]], window: Tuple[float, float],
           step: Optional[float], max_points: Optional[int]) -> Series:
    """The joined series of ``name`` (:func:`union_of`), decimated once over ``window`` at ``step``
    and ``max_points``."""
    t, v = union_of(name, archive, live)
    if not len(t):
        return t, v
    grid = choose_step(window[0], window[1], step, max_points)
    if 0 < grid < math.inf:  # each part holds its own slots' extremes: take the union's, always
        t, columns = reduce_to_step(t, {"v": v}, grid)
        v = columns["v"]
    t, columns = decimate_columns(t, {"v": v}, step, max_points, window)
    return t, columns["v"]
