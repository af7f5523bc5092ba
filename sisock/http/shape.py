"""Response shaping: data node answers to Grafana time series and tables, capped at ``maxDataPoints``.

Fields that share a timeline are reduced together with the project's one
min/max-preserving decimation (:mod:`sisock.decimate`), so a one-sample spike
stays visible at any zoom. Times go out as UNIX milliseconds, NaN as null (the
JSON encoder's: :func:`sisock.http.app.encode`); each target's answer stays numpy arrays
until it is encoded (:mod:`sisock.http.answers`).
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from sisock.decimate import decimate_columns
from sisock.http.answers import Entry
from sisock.http.errors import NodeFailed, TooLarge
from sisock.http.request import Query, Target
from sisock.http.results import WRITTEN

Series = Tuple[np.ndarray, np.ndarray]
#: A series and, when it was stitched from kept results and is answered as it came, its JSON (Entry's ``parts``).
Shaped = Tuple[np.ndarray, np.ndarray, Optional[List[bytes]]]
EMPTY: Shaped = (np.empty(0), np.empty(0), None)


def _column(values: list) -> np.ndarray:
    """Numbers (None as NaN) as floats; anything else (strings) as objects."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def reduce_answer(node: str, answer: dict, max_points: Optional[int]) -> Dict[str, Shaped]:
    """Each field of one ``get_data`` answer as ``(t, values, JSON or None)``, at most ``max_points`` samples."""
    data = answer.get("data")
    if not isinstance(data, dict):
        data = {}
    out: Dict[str, Shaped] = {}
    for name, timeline in (answer.get("timeline") or {}).items():
        if not isinstance(timeline, dict):
            raise NodeFailed(f"data node {node}: timeline {name!r} is not an object")
        t = np.asarray(timeline["t"] if timeline.get("t") is not None else [], dtype=float)
        columns = {}
        for field in timeline.get("fields") or []:
            if field not in data:
                continue
            column = _column(data[field])
            if len(column) != len(t):
                raise NodeFailed(f"data node {node}: field {field!r} has {len(column)} values for {len(t)} times")
            columns[field] = column
        t_out, reduced = decimate_columns(t, columns, None, max_points)
        written = timeline.get(WRITTEN) if t_out is t and len(reduced) == 1 else None
        parts = written() if written is not None else None
        out.update({field: (t_out, values, parts) for field, values in reduced.items()})
    return out


def shape(query: Query, answers: Dict[str, dict], timing: Dict[str, float],
          max_points: int, joined: Optional[Dict[str, Series]] = None) -> Tuple[List[Entry], int]:
    """The ``/query`` answer's entries (one per target, in order) and the points they hold, at most
    ``max_points``.

    Joined targets (no node) take their series from ``joined``. Identical targets share one
    entry, built once. Adds to ``timing`` the seconds spent decimating and building the entries.
    """
    began = time.perf_counter()
    plain = {target.node for target in query.targets if target.node}
    by_node = {node: reduce_answer(node, answer, query.max_points) for node, answer in answers.items()
               if node in plain}
    joined = joined or {}
    series = [by_node.get(target.node, {}).get(target.field, EMPTY) if target.node
              else (*joined.get(target.field, EMPTY[:2]), None) for target in query.targets]
    timing["decimate"] = time.perf_counter() - began
    points = sum(len(t) for t, _, _ in series)
    if points > max_points:
        raise TooLarge(f"the answer would hold {points} points, more than HTTP_MAX_POINTS={max_points}: "
                       f"set the panel's Max data points, shorten the range, or raise HTTP_MAX_POINTS")
    began = time.perf_counter()
    built: Dict[Target, Entry] = {}
    body = []
    for target, (t, values, parts) in zip(query.targets, series):
        if target not in built:
            built[target] = Entry(target.name, t, values, target.table, parts)
        body.append(built[target])
    timing["shape"] = time.perf_counter() - began
    return body, points
