"""Summary tiers of the archive: M4 aggregates of every numeric field, written once by the scanner.

While the scanner reads a data frame it aggregates each numeric field on the
60 s grid (:data:`TIERS` [0], about a frame); the reader answers a request
whose step is a multiple of a tier's width from those aggregates instead of
decoding every frame, and the answer is exactly the one the samples give
(:mod:`sisock.decimate`: first, minimum, maximum and last per slot).

Storage, in the index database and in the same per-file transaction as the frames:

- ``summaries_file``: one row per (file and provider, field): the file's 60 s
  buckets. They go with the file's ``feeds`` row.
- ``summaries``: one row per (provider, field, tier, chunk of :data:`CHUNK`
  buckets) for the coarser tiers, across files. New frames are merged in
  (aggregates of disjoint samples merge exactly); when a file's frames go
  (deleted, or read again from the start), the coarse buckets they touched are
  recomputed from the 60 s rows of the files that remain.

A row holds a :class:`~sisock.decimate.Slots` in a compact blob: bucket index,
count, the four sample times as seconds past the bucket's start (a difference
of nearby doubles, so exact both ways), and the four values, each column
byte-shuffled and the whole zlib-compressed.
"""
from __future__ import annotations

import math
import struct
import zlib
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from sisock.decimate import GRID, Slots, extremes, merge, slot_bounds
from sisock.g3 import format as fmt

#: Bucket widths (s) of the tiers; each divides the next (they are the decimation grid's).
TIERS: Tuple[float, ...] = tuple(w for w in GRID if w >= 60.0)
FINE = TIERS[0]
#: Buckets in one row of a coarse tier.
CHUNK = 256
_HEADER = struct.Struct("<BI")  # format version, bucket count
_FORMAT = 1

Key = Tuple[int, str]  # (prov_id, field key)


# -- the blob ----------------------------------------------------------------------------
def encode(slots: Slots, width: float) -> bytes:
    """The compact form of aggregates on the grid of ``width`` seconds."""
    index = np.round(slots.start / width).astype(np.int64)
    columns = [np.diff(index, prepend=0), slots.count.astype(np.int64)]
    for name in ("first_t", "min_t", "max_t", "last_t"):
        columns.append((getattr(slots, name) - slots.start).view(np.int64))
    for name in ("first_v", "min_v", "max_v", "last_v"):
        columns.append(getattr(slots, name).astype(np.float64).view(np.int64))
    table = np.stack(columns) if len(slots) else np.empty((10, 0), dtype=np.int64)
    shuffled = table.view(np.uint8).reshape(10, len(slots), 8).transpose(0, 2, 1).tobytes()
    return _HEADER.pack(_FORMAT, len(slots)) + zlib.compress(shuffled, 6)


def decode(blob: bytes, width: float) -> Slots:
    """Aggregates from :func:`encode`'s blob, bit for bit."""
    version, n = _HEADER.unpack_from(blob)
    if version != _FORMAT:
        raise ValueError(f"summary format {version} is unknown")
    raw = np.frombuffer(zlib.decompress(blob[_HEADER.size:]), dtype=np.uint8)
    table = raw.reshape(10, 8, n).transpose(0, 2, 1).copy().view(np.int64).reshape(10, n)
    index = np.cumsum(table[0])
    start = index.astype(np.float64) * width
    times = [start + table[2 + i].view(np.float64) for i in range(4)]
    values = [table[6 + i].view(np.float64) for i in range(4)]
    return Slots(start, table[1].copy(), times[0], values[0], times[1], values[1], times[2], values[2],
                 times[3], values[3])


# -- the scanner's side: aggregating frames --------------------------------------------
class FrameAggregator:
    """Collects 60 s aggregates of every numeric field of the data frames of one scan."""

    def __init__(self) -> None:
        self._parts: Dict[Key, List[tuple]] = {}

    def add_block(self, prov_id: int, block) -> None:
        """Aggregate one ``G3TimesampleMap``: its numeric fields share its times, so the bucket
        bounds are found once and each column is reduced with numpy, no per-sample Python."""
        ticks = fmt.ticks(block)
        if not len(ticks):
            return
        if np.any(ticks[1:] < ticks[:-1]):
            order = np.argsort(ticks, kind="stable")
        else:
            order = None
        t = ticks.astype(np.float64) / fmt.TICKS
        if order is not None:
            t = t[order]
        starts, ends = slot_bounds(t, FINE)
        last = ends - 1
        bucket = np.floor(t[starts] / FINE) * FINE
        count = ends - starts
        for key in block.keys():
            vector = block[key]
            if fmt.value_type(vector) != "number":
                continue
            v = np.asarray(vector, dtype=np.float64)
            if order is not None:
                v = v[order]
            imin, imax = extremes(v, starts)
            self._parts.setdefault((prov_id, key), []).append(
                (bucket, count, t[starts], v[starts], t[imin], v[imin], t[imax], v[imax], t[last], v[last]))

    def result(self) -> Dict[Key, Slots]:
        """The 60 s aggregates of each field over every frame added (a bucket two frames share merged)."""
        out = {}
        for key, parts in self._parts.items():
            joined = Slots(*(np.concatenate(column) for column in zip(*parts)))
            duplicated = len(np.unique(joined.start)) < len(joined)
            out[key] = merge([joined], FINE) if duplicated or np.any(np.diff(joined.start) < 0) else joined
        return out


# -- the database side ------------------------------------------------------------------
def store(cur, feeds: Dict[int, Tuple[int, str]], found: Dict[Key, Slots]) -> None:
    """Add a scan's aggregates (``feeds``: prov_id -> (feed id, description)) to both tables."""
    for (prov_id, key), slots in sorted(found.items()):
        if prov_id not in feeds or not len(slots):
            continue
        feed_id, description = feeds[prov_id]
        row = cur.one("SELECT data FROM summaries_file WHERE feed_id = ? AND field = ?", (feed_id, key))
        whole = merge([decode(row[0], FINE), slots], FINE) if row else slots
        args = (encode(whole, FINE), float(whole.start[0]), float(whole.start[-1] + FINE), feed_id, key)
        if row:
            cur.execute("UPDATE summaries_file SET data = ?, t_start = ?, t_end = ? WHERE feed_id = ? AND field = ?",
                        args)
        else:
            cur.execute("INSERT INTO summaries_file (data, t_start, t_end, feed_id, field) VALUES (?, ?, ?, ?, ?)",
                        args)
        for width in TIERS[1:]:
            _merge_into_chunks(cur, description, key, width, merge([slots], width))


def remove_file(cur, file_id: int) -> None:
    """Take a file's aggregates out: its 60 s rows go, and every coarse bucket they touched is
    recomputed from the 60 s rows of the other files."""
    rows = cur.all("SELECT fe.description, sf.field, sf.t_start, sf.t_end FROM summaries_file sf "
                   "JOIN feeds fe ON fe.id = sf.feed_id WHERE fe.file_id = ?", (file_id,))
    cur.execute("DELETE FROM summaries_file WHERE feed_id IN (SELECT id FROM feeds WHERE file_id = ?)", (file_id,))
    for description, key, t_start, t_end in rows:
        widest = TIERS[-1]
        lo, hi = math.floor(t_start / widest) * widest, math.ceil(t_end / widest) * widest
        remaining = fine_buckets(cur, description, [key], lo, hi).get(key, Slots.empty())
        for width in TIERS[1:]:
            a, b = math.floor(t_start / width) * width, math.ceil(t_end / width) * width
            inside = (remaining.start >= a) & (remaining.start < b)
            _replace_range(cur, description, key, width, a, b, merge([remaining.take(inside)], width))


def fine_buckets(cur, description: str, keys: Sequence[str], lo: float, hi: float) -> Dict[str, Slots]:
    """The 60 s buckets in ``[lo, hi)`` of ``keys`` of one provider, across its files, merged."""
    if not keys:
        return {}
    marks = ", ".join("?" * len(keys))
    rows = cur.all("SELECT sf.field, sf.data FROM summaries_file sf JOIN feeds fe ON fe.id = sf.feed_id "
                   f"WHERE fe.description = ? AND sf.field IN ({marks}) AND sf.t_start < ? AND sf.t_end > ?",
                   (description, *keys, hi, lo))
    return _gather(rows, FINE, lo, hi)


def coarse_buckets(cur, description: str, keys: Sequence[str], width: float, lo: float,
                   hi: float) -> Dict[str, Slots]:
    """The buckets of tier ``width`` in ``[lo, hi)`` of ``keys`` of one provider."""
    if not keys:
        return {}
    marks = ", ".join("?" * len(keys))
    first, last = _chunk(lo, width), _chunk(hi - width, width)
    rows = cur.all(f"SELECT field, data FROM summaries WHERE description = ? AND tier = ? AND field IN ({marks}) "
                   "AND chunk BETWEEN ? AND ?", (description, int(width), *keys, first, last))
    return _gather(rows, width, lo, hi)


def _gather(rows: Iterable[tuple], width: float, lo: float, hi: float) -> Dict[str, Slots]:
    parts: Dict[str, List[Slots]] = {}
    for key, blob in rows:
        slots = decode(blob, width)
        parts.setdefault(key, []).append(slots.take((slots.start >= lo) & (slots.start < hi)))
    return {key: merge(p, width) if len(p) > 1 else p[0] for key, p in parts.items()}


def _chunk(start: float, width: float) -> int:
    return int(math.floor(start / (width * CHUNK)))


def _chunks(slots: Slots, width: float):
    """``(chunk, slots of that chunk)`` for aggregates sorted by start."""
    chunk = np.floor(slots.start / (width * CHUNK)).astype(np.int64)
    bounds = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield int(chunk[a]), slots.take(slice(a, b))


def _read_chunk(cur, description: str, key: str, width: float, chunk: int) -> Optional[Slots]:
    row = cur.one("SELECT data FROM summaries WHERE description = ? AND field = ? AND tier = ? AND chunk = ?",
                  (description, key, int(width), chunk))
    return None if row is None else decode(row[0], width)


def _write_chunk(cur, description: str, key: str, width: float, chunk: int, slots: Slots, existed: bool) -> None:
    where = (description, key, int(width), chunk)
    if not len(slots):
        if existed:
            cur.execute("DELETE FROM summaries WHERE description = ? AND field = ? AND tier = ? AND chunk = ?", where)
    elif existed:
        cur.execute("UPDATE summaries SET data = ? WHERE description = ? AND field = ? AND tier = ? AND chunk = ?",
                    (encode(slots, width), *where))
    else:
        cur.execute("INSERT INTO summaries (data, description, field, tier, chunk) VALUES (?, ?, ?, ?, ?)",
                    (encode(slots, width), *where))


def _merge_into_chunks(cur, description: str, key: str, width: float, slots: Slots) -> None:
    for chunk, part in _chunks(slots, width):
        old = _read_chunk(cur, description, key, width, chunk)
        _write_chunk(cur, description, key, width, chunk, part if old is None else merge([old, part], width),
                     old is not None)


def _replace_range(cur, description: str, key: str, width: float, lo: float, hi: float, slots: Slots) -> None:
    """Set the buckets of ``[lo, hi)`` of one tier to ``slots`` (which lie inside it)."""
    for chunk in range(_chunk(lo, width), _chunk(hi - width, width) + 1):
        old = _read_chunk(cur, description, key, width, chunk)
        kept = [] if old is None else [old.take((old.start < lo) | (old.start >= hi))]
        new = slots.take(np.floor(slots.start / (width * CHUNK)) == chunk)
        _write_chunk(cur, description, key, width, chunk, merge(kept + [new], width), old is not None)


# -- the reader's side: which buckets tile a range ---------------------------------------
def cover(lo: float, hi: float, top: int) -> List[Tuple[int, float, float]]:
    """``(tier, a, b)`` pieces whose buckets exactly tile ``[lo, hi)`` (multiples of the finest
    width), as coarse as tiers up to ``top`` allow: fewest buckets to read."""
    pieces = []
    k = 0
    while k < top:  # climb: finer buckets up to the next boundary of the tier above
        boundary = math.ceil(lo / TIERS[k + 1]) * TIERS[k + 1]
        if boundary > hi:
            break
        if boundary > lo:
            pieces.append((k, lo, boundary))
            lo = boundary
        k += 1
    while lo < hi and k >= 0:  # descend: as many whole buckets as fit, then finer ones
        edge = math.floor(hi / TIERS[k]) * TIERS[k]
        if edge > lo:
            pieces.append((k, lo, edge))
            lo = edge
        k -= 1
    return pieces


def tier_for(step: float) -> Optional[int]:
    """The coarsest tier whose buckets tile slots of ``step`` seconds, or None (step too fine)."""
    fitting = [k for k, w in enumerate(TIERS) if w <= step and math.isclose(step / w, round(step / w))]
    return fitting[-1] if fitting else None
