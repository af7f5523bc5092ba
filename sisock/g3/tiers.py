"""Which summary rows answer which part of a window: shared by the reader's two reductions.

``get_data`` reduces onto M4 slots of a step, ``get_buckets`` onto arbitrary bucket edges;
both are answered from the summary tiers wherever whole buckets of the tiers tile the
window, given ``tier``, the coarsest tier whose width divides every slot or bucket boundary
inside the window (so no tier bucket straddles one). For each field (:func:`read`):

- a field's own finest tier matters only at the window's two edges (buckets finer than
  ``tier``'s lie within one of its buckets of each edge; :func:`summaries.finest`), so the
  rows answer from its first to its last whole bucket there; a field with rows coarser than
  ``tier`` in the window is left to its samples;
- that stretch is tiled with the fewest buckets (:func:`summaries.cover`), from the coarse
  rows in the middle and the file rows where the coarse ones cannot answer: the 60 s tier, a
  field's finest tier at each edge, a stretch of rows as wide as ``tier``, and spans whose
  coarse buckets wait for the scanner's refresh (:func:`summaries.dirty`);
- ``holes`` (per provider: spans whose samples must be read, widened to whole buckets of
  ``tier``) are left out of it;
- the rest of the window, its two ends and the holes, is left to the samples (:class:`Cover`'s
  ``rest``), read by the caller.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from sisock.g3 import summaries
from sisock.g3.summaries import merged

Key = Tuple[str, str]  # (provider description, field key)
Window = Tuple[float, float]
#: Seconds either side of a hole that still count as inside it (docs/design.md, ``exclude``).
SLACK = 1e-6


@dataclass
class Cover:
    """What the tiers answer of a window: each field's rows with their widths (seconds, each slot
    inside one slot or bucket of the request), and the windows ``[a, b)`` left to its samples."""

    parts: Dict[Key, List[summaries.Buckets]] = field(default_factory=dict)
    rest: Dict[Key, List[Window]] = field(default_factory=dict)


def read(index, keys: Sequence[Key], start: float, end: float, tier: Optional[int],
         holes: Optional[Dict[str, List[Window]]] = None, files: Optional[Dict[str, List[Window]]] = None) -> Cover:
    """The :class:`Cover` of ``[start, end)`` for the fields ``keys``; ``tier`` None (boundaries
    finer than every tier) leaves everything to the samples, and so does a provider with a file
    in the window whose summaries are not complete (an index being upgraded). ``files`` (per
    provider): spans answered from the file rows even where coarse rows could answer."""
    out = Cover()
    covered: Dict[Key, List[Window]] = {}
    if tier is not None and end - start >= summaries.FINE and keys:
        descriptions = sorted({d for d, _ in keys})
        summarized = set(descriptions) - index.unsummarized(descriptions, start, end)
        if summarized:
            index.run(lambda cur: _walk(cur, [k for k in keys if k[0] in summarized], start, end, tier,
                                        holes or {}, files or {}, out.parts, covered))
    for key in keys:
        out.rest[key] = minus(start, end, covered.get(key, []))
    return out


def _walk(cur, keys: Sequence[Key], start: float, end: float, tier: int, holes: Dict[str, List[Window]],
          files: Dict[str, List[Window]], parts: Dict[Key, List[summaries.Buckets]],
          covered: Dict[Key, List[Window]]) -> None:
    """:func:`read`'s work in one transaction: the rows of each field, and the stretches they cover."""
    top = summaries.TIERS[tier]
    descriptions = sorted({d for d, _ in keys})
    waiting = summaries.dirty(cur, descriptions, start, end)
    left_end, right_start = math.ceil(start / top) * top, math.floor(end / top) * top
    for description in descriptions:
        group_of: Dict[summaries.Edges, List[str]] = {}
        for key, edges in summaries.finest(cur, description, sorted({k for d, k in keys if d == description}),
                                           start, end, top).items():
            if edges is not None:  # else the field is read from its samples
                group_of.setdefault(edges, []).append(key)
        gaps = widened(holes.get(description, []), top)
        stale = merged(waiting.get(description, []) + files.get(description, []))
        for edges, group in group_of.items():
            lo = math.ceil(start / edges.left) * edges.left
            hi = math.floor(end / edges.right) * edges.right
            left_k, right_k = summaries.TIERS.index(edges.left), summaries.TIERS.index(edges.right)
            for a, b in minus(lo, hi, gaps):
                for key in group:
                    covered.setdefault((description, key), []).append((a, b))
                pieces = summaries.cover(a, b, tier)
                for cut in [(edges.wide_lo, edges.wide_hi), *stale]:
                    pieces = summaries.split(pieces, *cut)
                for k, pa, pb in pieces:
                    if k == 0 or _meets(pa, pb, [(edges.wide_lo, edges.wide_hi), *stale]) or \
                            (pb <= left_end and k <= left_k) or (pa >= right_start and k <= right_k):
                        # the file rows (each row's buckets divide the piece's): the coarse rows hold only
                        # rows finer than their tier, and wait for the refresh where files changed
                        for key, found in summaries.file_buckets(cur, description, group, pa, pb).items():
                            parts.setdefault((description, key), []).extend(found)
                    else:
                        for key, slots in summaries.coarse_buckets(cur, description, group, summaries.TIERS[k],
                                                                   pa, pb).items():
                            parts.setdefault((description, key), []).append(
                                summaries.Buckets(summaries.TIERS[k], slots))


def _meets(a: float, b: float, spans: List[Window]) -> bool:
    return any(a < hi and b > lo for lo, hi in spans)


def widened(spans: List[Window], width: float) -> List[Window]:
    """``spans`` (``[first, last]`` times, inclusive) grown to the whole buckets of ``width`` holding
    them (and :data:`SLACK` more), sorted, overlapping ones merged."""
    return merged([(math.floor((a - SLACK) / width) * width, (math.floor((b + SLACK) / width) + 1) * width)
                   for a, b in spans])


def minus(lo: float, hi: float, spans: List[Window]) -> List[Window]:
    """The parts of ``[lo, hi)`` outside ``spans`` (sorted, disjoint)."""
    out: List[Window] = []
    for a, b in spans:
        if a > lo and lo < hi:
            out.append((lo, min(a, hi)))
        lo = max(lo, b)
    if lo < hi:
        out.append((lo, hi))
    return out
