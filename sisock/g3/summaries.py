"""Summary tiers of the archive: M4 aggregates of every numeric field, written once by the scanner.

While the scanner reads a data frame it aggregates each numeric field on the
finest grid of :data:`TIERS` (60 s, about a frame) whose buckets hold at least
:data:`MIN_PER_BUCKET` of its samples on average (a slow field starts at a
coarser tier: finer buckets would be as large as its samples); the reader answers a request
whose step is a multiple of a tier's width from those aggregates instead of
decoding every frame, and the answer is exactly the one the samples give
(:mod:`sisock.decimate`: first, minimum, maximum and last per slot).

Storage, in the index database and in the same per-file transaction as the frames:

- ``summaries_file``: one row per (file and provider, field): the file's
  buckets at the field's finest width there (``width``). They go with the
  file's ``feeds`` row, whose ``summary_width`` is the widest of its rows.
- ``summaries``: one row per (provider, field, tier, chunk of :data:`CHUNK`
  buckets) for the coarser tiers, across files. They are derived from the file
  rows finer than the tier (a field's finest tier is its file rows): a file's
  transaction logs the span its rows changed (added or gone) in
  ``summaries_dirty``, and :func:`refresh` (the scanner's, after each pass and
  during a long one) rebuilds the coarse buckets of logged spans from the file
  rows, a few days per transaction. Until then the reader answers those spans
  from the file rows: the incremental refresh of continuous aggregates.

A row holds a :class:`~sisock.decimate.Slots` in a compact blob: its width, bucket
index, count, the four sample times as seconds past the bucket's start (a difference
of nearby doubles, so exact both ways), the four values and (format 3) the moments
InfluxQL's mean, sum and stddev need (the bucket's sum and ``m2``, the sum of squared
deviations from its mean), each column byte-shuffled and the whole zlib-compressed.
Rows of format 2 (written before moments were kept) decode with unknown (NaN) moments.
"""
from __future__ import annotations

import math
import struct
import zlib
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, cast

import numpy as np

from sisock.decimate import GRID, Slots, merge, segment_extremes, segment_moments, slot_bounds
from sisock.g3 import format as fmt
from sisock.g3 import window
from sisock.lru import SizedLRU

#: Bucket widths (s) of the tiers; each divides the next (they are the decimation grid's).
TIERS: Tuple[float, ...] = tuple(w for w in GRID if w >= 60.0)
FINE = TIERS[0]
#: Buckets in one row of a coarse tier.
CHUNK = 256
#: A field gets a tier only where its buckets average this many samples: below it a bucket
#: keeps more than a quarter of its samples (M4 keeps four), nearly as large as the samples.
MIN_PER_BUCKET = 16
#: Days of coarse buckets one refresh transaction rebuilds (bounds its memory: a few tens of MB).
REFRESH_DAYS = 8
#: zlib level of the blobs: 1 makes them 2.6% larger than 6 and compresses in two thirds of the time.
ZLIB_LEVEL = 1
_HEADER = struct.Struct("<BI")  # format version, bucket count
_WIDTH = struct.Struct("<d")  # formats 2 and 3: the bucket width follows the header
_FORMAT = 3
#: Columns of a row's table by format: index, count, 4 times, 4 values; format 3 adds sum and m2.
_COLUMNS = {1: 10, 2: 10, 3: 12}
#: Bytes of decoded rows kept (:func:`decode_buckets`), and what one entry costs besides its arrays.
DECODED_BYTES = 64 << 20
_ENTRY_BYTES = 1500
_DECODED: "SizedLRU[Buckets]" = SizedLRU(DECODED_BYTES)

Key = Tuple[int, str]  # (prov_id, field key)


class Buckets(NamedTuple):
    """Aggregates of one field on the grid of ``width`` seconds."""

    width: float
    slots: Slots


class Packed(NamedTuple):
    """One field's aggregates from one read, encoded (:func:`encode`) where they were made: the
    scanner's worker processes, so the process writing the index only stores them."""

    width: float
    t_start: float
    t_end: float
    data: bytes


def width_for(count: int, span: float) -> float:
    """The finest tier width whose buckets would hold :data:`MIN_PER_BUCKET` of ``count``
    samples spread over ``span`` seconds (regular sampling assumed); the finest for fewer than two."""
    if count < 2 or span <= 0:
        return FINE
    rate = (count - 1) / span
    return next((w for w in TIERS if rate * w >= MIN_PER_BUCKET), TIERS[-1])


# -- the blob ----------------------------------------------------------------------------
def encode(slots: Slots, width: float) -> bytes:
    """The compact form of aggregates on the grid of ``width`` seconds."""
    return encode_fields([slots], width)[0]


def encode_fields(fields: Sequence[Slots], width: float) -> List[bytes]:
    """:func:`encode` of the aggregates of fields sampled together (the same buckets), all at once:
    one table for them all, so a block of fields costs the numpy calls of one."""
    first = fields[0]
    if any(s.start is not first.start and not np.array_equal(s.start, first.start) for s in fields[1:]):
        raise ValueError("encode_fields: the fields' buckets differ")
    n = len(first)
    table = np.empty((len(fields), 12, n), dtype=np.int64)
    index = np.round(first.start / width).astype(np.int64)
    table[:, 0] = index
    table[:, 0, 1:] -= index[:-1]  # each bucket's index after the one before
    table[:, 1] = [s.count for s in fields]
    times = np.array([[s.first_t, s.min_t, s.max_t, s.last_t] for s in fields],
                     dtype=np.float64).reshape(len(fields), 4, n)
    times -= first.start
    table[:, 2:6] = times.view(np.int64)
    table[:, 6:10] = np.array([[s.first_v, s.min_v, s.max_v, s.last_v] for s in fields],
                              dtype=np.float64).reshape(len(fields), 4, n).view(np.int64)
    table[:, 10:] = np.array([[s.sum, s.m2] for s in fields],
                             dtype=np.float64).reshape(len(fields), 2, n).view(np.int64)
    shuffled = np.ascontiguousarray(table.view(np.uint8).reshape(len(fields), 12, n, 8).transpose(0, 1, 3, 2))
    head = _HEADER.pack(_FORMAT, n) + _WIDTH.pack(width)
    return [head + zlib.compress(shuffled[i], ZLIB_LEVEL) for i in range(len(fields))]


def decode_buckets(blob: bytes, width: Optional[float] = None) -> Buckets:
    """Aggregates from :func:`encode`'s blob, bit for bit, with their width (``width``: for format 1,
    of schema 4, which lacks it: 60 s rows or a known tier)."""
    return decode_all([blob], width)[0]


def decode_all(blobs: Sequence[bytes], width: Optional[float] = None) -> List[Buckets]:
    """:func:`decode_buckets` of many rows; rows of one length and width are unshuffled together
    (a refresh or a long window reads hundreds of a file's hour each).

    Panels read the same rows again and again (every panel ending now reads the last files'),
    so decoded rows are kept by their bytes (:data:`DECODED_BYTES`): a row that changed is
    other bytes, so what is kept is never stale. Their arrays are read-only, as they are shared.
    """
    out: List[Optional[Buckets]] = [None] * len(blobs)
    todo: Dict[Tuple[int, float, int], List[Tuple[int, bytes, int]]] = {}
    for i, blob in enumerate(blobs):
        data = bytes(blob)
        found = _DECODED.get((data, width))
        if found is not None:
            out[i] = found
            continue
        n, row_width, columns, at = _header(data, width)
        todo.setdefault((n, row_width, columns), []).append((i, data, at))
    for (n, row_width, columns), rows in todo.items():
        for (i, data, _), found in zip(rows, _decode_rows(n, row_width, columns, [d[at:] for _, d, at in rows])):
            out[i] = found
            _DECODED.put((data, width), len(data) + columns * 8 * n + _ENTRY_BYTES, found)
    return cast(List[Buckets], out)  # every row is decoded by now


def _header(blob: bytes, width: Optional[float]) -> Tuple[int, float, int, int]:
    """``(buckets, width, columns, where the compressed table starts)`` of a blob."""
    version, n = _HEADER.unpack_from(blob)
    at = _HEADER.size
    if version not in _COLUMNS:
        raise ValueError(f"summary format {version} is unknown")
    if version >= 2:
        (width,) = _WIDTH.unpack_from(blob, at)
        at += _WIDTH.size
    return n, FINE if width is None else width, _COLUMNS[version], at


def _decode_rows(n: int, width: float, columns: int, tables: List[bytes]) -> List[Buckets]:
    """Rows of ``n`` buckets of ``width`` from their compressed tables of ``columns`` columns, in one
    set of numpy calls; rows without moments (10 columns) get unknown ones."""
    raw = np.frombuffer(b"".join(zlib.decompress(t) for t in tables), dtype=np.uint8)
    table = raw.reshape(len(tables), columns, 8, n).transpose(0, 1, 3, 2).copy().view(np.int64).reshape(
        len(tables), columns, n)
    start = np.cumsum(table[:, 0], axis=1).astype(np.float64) * width
    times = start[:, None, :] + table[:, 2:6].view(np.float64)
    values = table[:, 6:].view(np.float64)  # the four values, then the moments if there are
    count = table[:, 1].copy()
    for array in (start, times, values, count):
        array.flags.writeable = False
    return [Buckets(width, Slots(start[r], count[r], times[r, 0], values[r, 0], times[r, 1], values[r, 1],
                                 times[r, 2], values[r, 2], times[r, 3], values[r, 3],
                                 *((values[r, 4], values[r, 5]) if columns > 10 else ())))
            for r in range(len(tables))]


# -- the scanner's side: aggregating frames --------------------------------------------
class FrameAggregator:
    """Collects the data frames of one scan and gives the aggregates of every numeric field, each
    block at the finest tier its sampling rate fills (:func:`width_for`).

    Blocks are kept (numpy views of the decoded vectors, no copy) and reduced once per file,
    a whole block's fields at a time, so the cost per frame is a few appends, not numpy calls.
    """

    def __init__(self) -> None:
        self._blocks: Dict[Tuple[int, Tuple[str, ...]], List[Tuple[np.ndarray, List[np.ndarray]]]] = {}

    def add_block(self, prov_id: int, keys: Tuple[str, ...], ticks: np.ndarray, columns: List[np.ndarray]) -> None:
        """Keep one block's times (``ticks``) and the ``columns`` of its numeric ``keys``."""
        self._blocks.setdefault((prov_id, keys), []).append((ticks, columns))

    def result(self) -> Dict[Key, Packed]:
        """The aggregates of each numeric field over every block added, encoded."""
        out: Dict[Key, Packed] = {}
        for (prov_id, keys), pieces in self._blocks.items():
            t = np.concatenate([ticks for ticks, _ in pieces], dtype=np.float64)
            t /= fmt.TICKS
            values = np.empty((len(keys), len(t)))
            for i in range(len(keys)):  # one copy of each column, straight into its row
                np.concatenate([columns[i] for _, columns in pieces], out=values[i])
            if np.any(t[1:] < t[:-1]):
                order = np.argsort(t, kind="stable")
                t, values = t[order], values[:, order]
            width = width_for(len(t), float(t[-1] - t[0]))
            starts, ends = slot_bounds(t, width)
            imin, imax = segment_extremes(values, starts)
            bucket, count, last = np.floor(t[starts] / width) * width, ends - starts, ends - 1
            first_t, last_t = t[starts], t[last]
            total, m2 = segment_moments(values, starts, count)
            fields = [Slots(bucket, count, first_t, v[starts], t[lo], v[lo], t[hi], v[hi], last_t, v[last], s, m)
                      for v, lo, hi, s, m in zip(values, imin, imax, total, m2)]
            span = float(bucket[0]), float(bucket[-1] + width)
            for key, blob in zip(keys, encode_fields(fields, width)):
                out[(prov_id, key)] = Packed(width, *span, blob)
        return out


# -- the database side ------------------------------------------------------------------
def store(cur, feeds: Dict[int, Tuple[int, str]], found: Dict[Key, Packed]) -> None:
    """Add a scan's aggregates (``feeds``: prov_id -> (feed id, description)) to its files' rows,
    and log their span for the coarse tiers' :func:`refresh`. A grown file's row is coarsened
    when its samples so far fill only a coarser tier (never made finer: that cannot be exact)."""
    todo = [(feeds[prov_id], key, packed) for (prov_id, key), packed in sorted(found.items()) if prov_id in feeds]
    if not todo:
        return
    ids = sorted({feed_id for (feed_id, _), _, _ in todo})
    existing = {(r[0], r[1]): r[2] for r in cur.all(
        f"SELECT feed_id, field, data FROM summaries_file WHERE feed_id IN ({', '.join('?' * len(ids))})", ids)}
    inserts: List[tuple] = []
    updates: List[tuple] = []
    spans: Dict[str, Tuple[float, float]] = {}
    widest: Dict[int, float] = {}
    for (feed_id, description), key, new in todo:
        old = existing.get((feed_id, key))
        if old:  # a grown file: its buckets so far and the new ones, merged
            before, after = decode_buckets(old), decode_buckets(new.data)
            count = int(before.slots.count.sum() + after.slots.count.sum())
            span = max(float(after.slots.last_t[-1]), float(before.slots.last_t[-1])) - \
                min(float(after.slots.first_t[0]), float(before.slots.first_t[0]))
            width = max(before.width, after.width, width_for(count, span))
            slots = merge([before.slots, after.slots], width)
            new = Packed(width, float(slots.start[0]), float(slots.start[-1] + width), encode(slots, width))
        (updates if old else inserts).append((new.data, new.t_start, new.t_end, new.width, feed_id, key))
        widest[feed_id] = max(widest.get(feed_id, FINE), new.width)
        lo, hi = spans.get(description, (math.inf, -math.inf))
        spans[description] = (min(lo, new.t_start), max(hi, new.t_end))
    cur.executemany("INSERT INTO summaries_file (data, t_start, t_end, width, feed_id, field) "
                    "VALUES (?, ?, ?, ?, ?, ?)", inserts)
    cur.executemany("UPDATE summaries_file SET data = ?, t_start = ?, t_end = ?, width = ? "
                    "WHERE feed_id = ? AND field = ?", updates)
    cur.executemany("UPDATE feeds SET summary_width = CASE WHEN summary_width IS NULL OR summary_width < ? THEN ? "
                    "ELSE summary_width END WHERE id = ?", [(w, w, f) for f, w in sorted(widest.items())])
    for description, (lo, hi) in spans.items():
        _invalidate(cur, description, lo, hi)


def remove_file(cur, file_id: int) -> None:
    """Take a file's aggregates out: its rows go, and their span is logged for :func:`refresh`."""
    for description, lo, hi in cur.all(
            "SELECT fe.description, MIN(sf.t_start), MAX(sf.t_end) FROM summaries_file sf "
            "JOIN feeds fe ON fe.id = sf.feed_id WHERE fe.file_id = ? GROUP BY fe.description", (file_id,)):
        _invalidate(cur, description, lo, hi)
    cur.execute("DELETE FROM summaries_file WHERE feed_id IN (SELECT id FROM feeds WHERE file_id = ?)", (file_id,))


def _invalidate(cur, description: str, lo: float, hi: float) -> None:
    cur.execute("INSERT INTO summaries_dirty (description, t_start, t_end) VALUES (?, ?, ?)", (description, lo, hi))


def dirty(cur, descriptions: Sequence[str], start: float, end: float) -> Dict[str, List[Tuple[float, float]]]:
    """For each of ``descriptions``, the spans in ``[start, end)`` (sorted, overlapping ones merged)
    whose coarse buckets wait for a :func:`refresh`: the file rows answer them meanwhile."""
    if not descriptions:
        return {}
    marks = ", ".join("?" * len(descriptions))
    rows = cur.all(f"SELECT description, t_start, t_end FROM summaries_dirty WHERE description IN ({marks}) "
                   "AND t_start < ? AND t_end > ? ORDER BY description, t_start", (*descriptions, end, start))
    return merged_by_description(rows)


def merged(spans: Iterable[Tuple[float, float]]) -> List[Tuple[float, float]]:
    """``spans`` sorted, overlapping and touching ones merged."""
    out: List[Tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def merged_by_description(rows: Iterable[Tuple[str, float, float]]) -> Dict[str, List[Tuple[float, float]]]:
    """``(description, start, end)`` rows as each description's :func:`merged` spans (as floats)."""
    spans: Dict[str, List[Tuple[float, float]]] = {}
    for description, lo, hi in rows:
        spans.setdefault(description, []).append((float(lo), float(hi)))
    return {description: merged(found) for description, found in spans.items()}


def refresh(index, days: float = REFRESH_DAYS) -> int:
    """Recompute the coarse tiers wherever file rows came or went since the last refresh (the
    log in ``summaries_dirty``, as continuous aggregates keep an invalidation log), from the
    file rows, at most ``days`` (whole UTC days) per transaction so memory stays bounded, and no
    further than the logged spans reach (an hour's new rows rebuild one day, not ``days``).
    Returns how many stretches were done. A stretch's log entries go in the same transaction as
    its rows, so a refresh stopped anywhere is finished by the next one."""
    widest = TIERS[-1]
    done = 0
    while True:
        row = index.run(lambda cur: cur.one("SELECT description, MIN(t_start) FROM summaries_dirty "
                                            "GROUP BY description ORDER BY description LIMIT 1"))
        if row is None:
            return done
        description, first = row
        lo = math.floor(first / widest) * widest
        (reach,) = index.run(lambda cur, description=description, lo=lo: cur.one(
            "SELECT MAX(t_end) FROM summaries_dirty WHERE description = ? AND t_start < ?",
            (description, lo + days * widest)))
        hi = min(lo + days * widest, max(math.ceil(reach / widest), lo / widest + 1) * widest)
        index.run(lambda cur, description=description, lo=lo, hi=hi: _refresh_stretch(cur, description, lo, hi))
        done += 1


def _refresh_stretch(cur, description: str, lo: float, hi: float) -> None:
    """Rebuild every coarse bucket of ``description`` in ``[lo, hi)`` (whole days) and take the
    stretch out of the log. A tier is made of the file rows finer than its buckets (merged from the
    tier below and the rows of its width: exact, as merging is, and a fraction of the rows to
    merge again); a field whose rows are that wide already is read from them (the reader does),
    so its copy would cost as much again."""
    rows = file_buckets(cur, description, None, lo, hi)
    below: Dict[str, Slots] = {}  # each field's buckets of the tier below, made of its rows finer than that
    for finer, width in zip(TIERS, TIERS[1:]):
        first, last = _chunk(lo, width), _chunk(hi - width, width)
        old = _read_chunks(cur, description, width, None, first, last)
        # the rows finer than this tier: the tier below (its own finer rows, merged) and the rows of its width
        fits = {key: [b.slots for b in found if b.width == finer] for key, found in rows.items()}
        for key, merged in below.items():
            fits.setdefault(key, []).append(merged)
        out: Dict[Tuple[str, int], Slots] = {}
        for key in set(fits) | {k for k, _ in old}:
            new = below[key] = merge(fits.get(key, []), width)
            chunks = np.floor(new.start / (width * CHUNK))
            for chunk in range(first, last + 1):
                stored = old.get((key, chunk))
                kept = [] if stored is None else [stored.take((stored.start < lo) | (stored.start >= hi))]
                inside = new.take(chunks == chunk)
                if stored is not None or len(inside):
                    out[(key, chunk)] = merge(kept + [inside], width) if kept else inside
        _write_chunks(cur, description, width, out, set(old))
    for row_id, t_start, t_end in cur.all("SELECT id, t_start, t_end FROM summaries_dirty WHERE description = ? "
                                          "AND t_start < ? AND t_end > ?", (description, hi, lo)):
        cur.execute("DELETE FROM summaries_dirty WHERE id = ?", (row_id,))
        for a, b in ((t_start, lo), (hi, t_end)):  # what of the entry lies outside this stretch stays logged
            if b > a:
                _invalidate(cur, description, a, b)


def file_buckets(cur, description: str, keys: Optional[Sequence[str]], lo: float,
                 hi: float) -> Dict[str, List[Buckets]]:
    """The file rows' buckets in ``[lo, hi)`` (multiples of every row's width) of ``keys`` (None:
    every field) of one provider, across its files, each at its own width."""
    if keys is not None and not keys:
        return {}
    which = "" if keys is None else f"AND sf.field IN ({', '.join('?' * len(keys))}) "
    # the feed's span (indexed) finds the files: a bucket starts at or before its last sample
    rows = cur.all("SELECT sf.field, sf.data FROM feeds fe JOIN summaries_file sf ON sf.feed_id = fe.id "
                   f"WHERE fe.description = ? AND {window.overlaps()} "
                   f"{which}AND sf.t_start < ? AND sf.t_end > ?",
                   (description, *window.bounds(lo, hi), *(keys or ()), hi, lo))
    found: Dict[str, List[Buckets]] = {}
    for (key, _), (width, slots) in zip(rows, decode_all([blob for _, blob in rows])):
        found.setdefault(key, []).append(Buckets(width, slots.between(lo, hi)))
    return found


class Edges(NamedTuple):
    """A field's finest tier at a window's two edges, and where in it rows as wide as the
    request's top tier lie (``wide_lo`` = ``wide_hi``: nowhere); those are read from file rows."""

    left: float
    right: float
    wide_lo: float = 0.0
    wide_hi: float = 0.0


def finest(cur, description: str, keys: Sequence[str], start: float, end: float,
           top: float) -> Dict[str, Optional[Edges]]:
    """For each of ``keys``, :class:`Edges` for a request answered with tiers up to ``top``
    seconds; None where some file in the window has only coarser buckets than ``top`` (the
    field is then read from its frames).

    Only the edges need a field's own width (buckets finer than ``top`` are read within one
    ``top`` bucket of each edge); the middle only needs every row to be finer than ``top`` (the
    coarse rows hold those), and where some are as wide, the file rows answer that stretch.
    The catalogue's width of each field (its widest row anywhere) comes first:
    on an archive whose fields all fill 60 s buckets that is all it costs, and the whole window
    is searched only when some row of the field may be as wide as ``top``."""
    out: Dict[str, Optional[Edges]] = {key: Edges(FINE, FINE) for key in keys}
    if not keys:
        return out
    marks = ", ".join("?" * len(keys))
    (widest,) = cur.one(f"SELECT MAX(width) FROM catalogue WHERE description = ? AND field IN ({marks})",
                        (description, *keys))
    if widest is None or widest <= FINE:
        return out
    left_end, right_start = math.ceil(start / top) * top, math.floor(end / top) * top
    left = {k: w for k, (w, _, _) in _widest_rows(cur, description, keys, start, min(left_end, end), FINE).items()}
    right = {k: w for k, (w, _, _) in _widest_rows(cur, description, keys, max(right_start, start), end,
                                                    FINE).items()}
    whole = _widest_rows(cur, description, keys, start, end, top) if widest >= top else {}
    for key in keys:
        width, lo, hi = whole.get(key, (0.0, 0.0, 0.0))
        if width > top:
            out[key] = None
        else:
            out[key] = Edges(left.get(key, FINE), right.get(key, FINE), *((lo, hi) if width == top else (0.0, 0.0)))
    return out


def _widest_rows(cur, description: str, keys: Sequence[str], lo: float, hi: float,
                 above: float) -> Dict[str, Tuple[float, float, float]]:
    """``(widest, t_start, t_end)`` of each key's rows in ``[lo, hi)`` among the feeds whose widest
    row is over ``above`` (at least ``above`` when it is not the finest width), the times spanning
    its rows of that widest width: only files holding coarse rows are searched."""
    if hi <= lo:
        return {}
    marks = ", ".join("?" * len(keys))
    compare = ">" if above <= FINE else ">="
    rows = cur.all("SELECT sf.field, sf.width, MIN(sf.t_start), MAX(sf.t_end) FROM feeds fe "
                   "JOIN summaries_file sf ON sf.feed_id = fe.id "
                   f"WHERE fe.description = ? AND {window.overlaps()} AND fe.summary_width {compare} ? "
                   f"AND sf.field IN ({marks}) GROUP BY sf.field, sf.width",
                   (description, *window.bounds(lo, hi), above, *keys))
    out: Dict[str, Tuple[float, float, float]] = {}
    for key, width, t_start, t_end in rows:
        if key not in out or width > out[key][0]:
            out[key] = (float(width), float(t_start), float(t_end))
    return out


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
    rows = list(rows)
    parts: Dict[str, List[Slots]] = {}
    for (key, _), found in zip(rows, decode_all([blob for _, blob in rows], width)):
        parts.setdefault(key, []).append(found.slots.between(lo, hi))
    return {key: merge(p, width) if len(p) > 1 else p[0] for key, p in parts.items()}


def _chunk(start: float, width: float) -> int:
    return int(math.floor(start / (width * CHUNK)))


def _read_chunks(cur, description: str, width: float, keys: Optional[Sequence[str]], first: int,
                 last: int) -> Dict[Tuple[str, int], Slots]:
    """The stored rows of one tier for ``keys`` (None: every field) and chunks ``first``..``last``."""
    which = "" if keys is None else f"AND field IN ({', '.join('?' * len(keys))}) "
    rows = cur.all(f"SELECT field, chunk, data FROM summaries WHERE description = ? AND tier = ? {which}"
                   "AND chunk BETWEEN ? AND ?", (description, int(width), *(keys or ()), first, last))
    return {(key, chunk): found.slots for (key, chunk, _), found in zip(rows, decode_all([r[2] for r in rows], width))}


def _write_chunks(cur, description: str, width: float, rows: Dict[Tuple[str, int], Slots],
                  existed: set) -> None:
    """Write one tier's rows: new ones inserted, old ones updated, emptied ones deleted."""
    inserts: List[tuple] = []
    updates: List[tuple] = []
    deletes: List[tuple] = []
    for (key, chunk), slots in rows.items():
        where = (description, key, int(width), chunk)
        if not len(slots):
            if (key, chunk) in existed:
                deletes.append(where)
        else:
            ((updates if (key, chunk) in existed else inserts)).append((encode(slots, width), *where))
    cur.executemany("INSERT INTO summaries (data, description, field, tier, chunk) VALUES (?, ?, ?, ?, ?)", inserts)
    cur.executemany("UPDATE summaries SET data = ? WHERE description = ? AND field = ? AND tier = ? AND chunk = ?",
                    updates)
    cur.executemany("DELETE FROM summaries WHERE description = ? AND field = ? AND tier = ? AND chunk = ?", deletes)


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


def split(pieces: List[Tuple[int, float, float]], lo: float, hi: float) -> List[Tuple[int, float, float]]:
    """:func:`cover`'s pieces cut at the bucket boundaries around ``[lo, hi)``, so that only the
    buckets meeting that stretch are read from elsewhere."""
    out: List[Tuple[int, float, float]] = []
    for k, a, b in pieces:
        width = TIERS[k]
        cuts = sorted({a, b} | {c for c in (math.floor(lo / width) * width, math.ceil(hi / width) * width)
                                if a < c < b}) if hi > lo else [a, b]
        out.extend((k, x, y) for x, y in zip(cuts, cuts[1:]))
    return out


def tier_for(step: float) -> Optional[int]:
    """The coarsest tier whose buckets tile slots of ``step`` seconds, or None (step too fine)."""
    fitting = [k for k, w in enumerate(TIERS) if w <= step and math.isclose(step / w, round(step / w))]
    return fitting[-1] if fitting else None
