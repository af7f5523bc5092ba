"""One series per name: the archive (``g3_reader``) and the live feeds (data-feed) joined.

A target without ``::`` is an archive full name, ``observatory.<agent>.feeds.<feed>.<key>``.
Its series is the archive's samples up to the newest time the index holds for that
provider (``finalized_until`` of the g3 reader's answer), then the samples after it of
every live node that serves the name (a data-feed instance answers under the archive's
names too); several instances' copies of a sample count once. Both sources are asked with
the request's step, so the archive part comes from its summary tiers and each part is
reduced on the same aligned grid (:mod:`sisock.decimate`); the seam is put on a slot
boundary where the live buffer allows, so every slot comes whole from one source and the
joined series, reduced once more, is exactly the reduction of all the samples.

Listing: each archive full name once, bare, with units where either source knows them;
the live nodes' archive-named aliases are left out (their own lower-cased names stay).
"""
from __future__ import annotations

import math
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sisock.decimate import choose_step, decimate_columns
from sisock.http.errors import NodeFailed

#: The data node that serves the archive.
ARCHIVE_NODE = "g3_reader"
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


def plan(names: Sequence[str], wanted: Dict[str, List[str]],
         serving: Callable[[str], List[str]]) -> Dict[str, List[str]]:
    """``wanted`` (fields per node) with each joined name asked of the archive and of every live
    node that ``serving(name)`` lists."""
    out = {node: list(fields) for node, fields in wanted.items()}
    for name in names:
        for node in [ARCHIVE_NODE] + [n for n in serving(name) if n != ARCHIVE_NODE]:
            fields = out.setdefault(node, [])
            if name not in fields:
                fields.append(name)
    return out


def _field(node: str, answer: Optional[dict], name: str) -> Tuple[np.ndarray, np.ndarray, Optional[float]]:
    """One field of one node's ``get_data`` answer: times, values and its ``finalized_until``."""
    if not isinstance(answer, dict):
        return np.empty(0), np.empty(0), None
    data = answer.get("data")
    if not isinstance(data, dict):
        data = {}
    for timeline in (answer.get("timeline") or {}).values():
        if isinstance(timeline, dict) and name in (timeline.get("fields") or []) and name in data:
            t = np.asarray(timeline.get("t") or [], dtype=float)
            values = _values(data[name])
            if len(values) != len(t):
                raise NodeFailed(f"data node {node}: field {name!r} has {len(values)} values for {len(t)} times")
            until = timeline.get("finalized_until")
            return t, values, float(until) if isinstance(until, (int, float)) else None
    return np.empty(0), np.empty(0), None


def _values(values: list) -> np.ndarray:
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


def series(name: str, answers: Dict[str, dict], live: Sequence[str], window: Tuple[float, float],
           step: Optional[float], max_points: Optional[int]) -> Series:
    """The joined series of ``name``: archive up to its ``finalized_until``, live after it, one
    sample per time, decimated once over ``window`` at ``step`` and ``max_points``.

    Decimated, the seam is moved back to the start of the slot holding ``finalized_until``
    when the live feed reaches back that far (both hold those samples): each source then
    gives whole slots, whose reduced samples are exact. Otherwise the seam slot is reduced
    from what both sources kept of it.
    """
    t_a, v_a, until = _field(ARCHIVE_NODE, answers.get(ARCHIVE_NODE), name)
    t_l, v_l = _union([_field(node, answers.get(node), name)[:2] for node in live if node != ARCHIVE_NODE])
    if until is None and len(t_a):  # a reader that does not say: its newest sample
        until = float(t_a[-1])
    if until is not None:
        grid = choose_step(window[0], window[1], step, max_points)
        seam = math.floor(until / grid) * grid if 0 < grid < math.inf else None
        if seam is not None and len(t_l) and t_l[0] <= seam:
            archive, later = t_a < seam, t_l >= seam
        else:
            archive, later = t_a <= until, t_l > until
        t_a, v_a, t_l, v_l = t_a[archive], v_a[archive], t_l[later], v_l[later]
    t, v = _union([(t_a, v_a), (t_l, v_l)])
    if not len(t):
        return t, v
    t, columns = decimate_columns(t, {"v": v}, step, max_points, window)
    return t, columns["v"]
