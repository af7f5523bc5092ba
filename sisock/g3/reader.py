"""Reads fields of the indexed .g3 archive: only the frames that overlap a request.

The index says which data frames of which files hold a provider's samples in
a time range; the reader seeks to each one, keeps decoded frames in a bounded
LRU cache (a frame is read again once its file changed) and assembles numpy
arrays per timeline (a provider's block: fields sampled together).

A decimated request for numeric fields is answered per field, slot by slot
(first, minimum, maximum, last): from the summary tiers wherever whole
buckets cover the slots, and from the samples only at the window's edges and
where summaries are not there yet (:mod:`sisock.g3.summaries`), so its cost
does not grow with the span.
"""
from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import txaio
from spt3g import core

from sisock import log
from sisock.lru import SizedLRU
from sisock.datanode import field_info
from sisock.decimate import Slots, aggregate, choose_step, decimate_columns, merge, reduce_to_step
from sisock.g3 import format as fmt
from sisock.g3 import framing, rawframe, schema, summaries
from sisock.g3.index import Index

#: Samples a timeline may gather before it is reduced to the request's resolution, so
#: that memory stays bounded however long the requested range is.
COMPACT_AT = 2_000_000

Columns = Dict[str, np.ndarray]


class FrameCache(SizedLRU[Tuple[tuple, object]]):
    """Decoded frames (their :class:`Block` s) by ``(path, byte offset)``, least recently used
    dropped beyond ``capacity`` bytes; a frame is stale once its file's ``stamp`` changed."""

    # get and put take the file's stamp too (override): a FrameCache is only ever used as one
    def get(self, key: Tuple[str, int], stamp: tuple) -> Optional[object]:  # type: ignore[override]
        """The frame cached under ``key`` if its file still has ``stamp`` (size, mtime)."""
        hit = super().get(key)
        return hit[1] if hit is not None and hit[0] == stamp else None

    def put(self, key: Tuple[str, int], stamp: tuple, nbytes: int, frame: object) -> None:  # type: ignore[override]
        """Keep a frame, dropping the oldest ones to stay within capacity."""
        super().put(key, nbytes, (stamp, frame))


class Block:
    """One block of a data frame as the reader uses it: its name, its times (G3Time ticks) and its
    columns as numpy arrays. A frame read from its bytes (:mod:`sisock.g3.rawframe`) gives its
    times and numeric columns at once, as views of the frame's bytes, and is decoded by spt3g
    only if a text or bool column is asked for (``decode``); a frame spt3g decoded gives each
    column as a view of its vector the first time it is asked for. The frame cache keeps these,
    so a warm read does not go through spt3g's objects again."""

    __slots__ = ("name", "_block", "_decode", "_keys", "_ticks", "_columns")

    def __init__(self, name: str, block: Optional[core.G3TimesampleMap] = None,
                 raw: Optional[rawframe.RawBlock] = None,
                 decode: Optional[Callable[[], core.G3TimesampleMap]] = None) -> None:
        self.name, self._block, self._decode = name, block, decode
        self._keys = None if raw is None else frozenset(raw.keys)
        self._ticks: Optional[np.ndarray] = None if raw is None else raw.ticks
        # integers as spt3g gives them (int64), whatever width they were stored at
        self._columns: Dict[str, np.ndarray] = {} if raw is None else {
            k: c if c.dtype.kind == "f" else c.astype(np.int64) for k, c in zip(raw.keys, raw.columns)
            if c is not None}

    def _map(self) -> core.G3TimesampleMap:
        if self._block is None:
            assert self._decode is not None  # a block is made with one or the other
            self._block = self._decode()
        return self._block

    @property
    def ticks(self) -> np.ndarray:
        if self._ticks is None:
            self._ticks = fmt.ticks(self._map())
        return self._ticks

    def __contains__(self, key: str) -> bool:
        return key in self._columns or (key in self._keys if self._keys is not None else key in self._map())

    def column(self, key: str) -> np.ndarray:
        found = self._columns.get(key)
        if found is None:
            found = self._columns[key] = np.asarray(self._map()[key])
        return found


def unpack(frame: Union[core.G3Frame, rawframe.RawFrame], data: Optional[bytearray] = None) -> Tuple[Block, ...]:
    """A data frame's blocks (:class:`Block`): of a frame read from its bytes ``data``, or one spt3g decoded."""
    if isinstance(frame, rawframe.RawFrame):
        decoded = _Decoded(data or bytearray())
        return tuple(Block(name, raw=raw, decode=functools.partial(decoded.block, i))
                     for i, (name, raw) in enumerate(zip(frame.names, frame.blocks)))
    return tuple(Block(name, block) for name, block in fmt.blocks(frame))


class _Decoded:
    """spt3g's decoding of a frame read from its bytes, made once if one of its text or bool columns is asked for."""

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.frame: Optional[core.G3Frame] = None

    def block(self, i: int) -> core.G3TimesampleMap:
        if self.frame is None:
            self.frame = framing.decode(bytes(self.data))
        return self.frame["blocks"][i]


@dataclass
class Field:
    """A field of the archive: its provider, key in the block, and block (= timeline)."""

    description: str
    key: str
    block: str
    type: str = "number"

    @property
    def timeline(self) -> str:
        return f"{self.description}.{self.block}"


@dataclass
class _Timeline:
    """Pieces of one timeline collected frame by frame (views into the decoded frames), with running lengths."""

    ticks: List[np.ndarray] = field(default_factory=list)
    length: int = 0
    columns: Dict[str, List[np.ndarray]] = field(default_factory=dict)
    filled: Dict[str, int] = field(default_factory=dict)

    def add_ticks(self, ticks: np.ndarray) -> None:
        self.ticks.append(ticks)
        self.length += len(ticks)

    def add(self, name: str, column: np.ndarray) -> None:
        """Append a column piece, first padding what earlier frames lacked (NaN, or None for text)."""
        parts = self.columns.setdefault(name, [])
        missing = self.length - len(column) - self.filled.get(name, 0)
        if missing > 0:
            parts.append(np.full(missing, np.nan) if column.dtype.kind in "biuf"
                         else np.full(missing, None, dtype=object))
        parts.append(column)
        self.filled[name] = self.length


class Reader:
    """Answers ``get_fields`` and ``get_data`` from the index and the files."""

    def __init__(self, index: Index, cache_mb: int) -> None:
        self.index = index
        self.cache = FrameCache(cache_mb * 1_000_000)
        self._names: Dict[str, Field] = {}
        self._generation = -1  # of the index, when the names and newest times were read
        self._schema_ready = False
        self._lock = threading.Lock()
        txaio.use_twisted()
        self.log = log.logger()
        self._throttle = log.Throttle(60.0)
        self._until: Dict[str, float] = {}  # description -> its newest indexed time, at _generation
        self._revisions: Dict[str, Optional[int]] = {}  # description -> its revision, at _generation

    def _ready(self) -> bool:
        """True once the index has this sisock's schema (the scanner makes and upgrades it)."""
        if not self._schema_ready:
            found = self.index.schema_version()
            if found != schema.CURRENT:
                self._warn("the index has schema version {found}, this reader needs {needed}: answering with no "
                           "data until g3-file-scanner has made or upgraded it", found=found, needed=schema.CURRENT)
                return False
            self._schema_ready = True
        return True

    # -- names -------------------------------------------------------------------
    def _follow(self) -> None:
        """Read the names again when the index has changed since they were read (its generation):
        every reader process then answers a name the same way at the same moment. Call with
        the lock held."""
        generation = self.index.generation()
        if generation == self._generation:
            return
        table: Dict[str, Field] = {}
        for description, key, block, type_ in sorted(self.index.known_fields()):
            f = Field(description, key, block, type_ or "number")
            table.setdefault(f"{description}.{key}", f)
            table.setdefault(fmt.short_name(description, key), f)
        self._names, self._until, self._revisions, self._generation = table, {}, {}, generation

    def known(self) -> Dict[str, Field]:
        """Every name the archive knows (full and short forms) -> its field; empty until the index has this
        sisock's schema."""
        if not self._ready():
            return {}
        with self._lock:
            self._follow()
            return dict(self._names)

    def resolve(self, names: List[str]) -> Dict[str, Field]:
        """Requested name -> field, for the names the archive knows (full or short form)."""
        if not self._ready():
            return {}
        with self._lock:
            self._follow()
            return {n: self._names[n] for n in names if n in self._names}

    # -- get_fields ----------------------------------------------------------------
    def fields(self, start: float, end: float) -> Tuple[dict, dict]:
        """Fields with data frames in ``[start, end)`` and their timelines."""
        fields: Dict[str, dict] = {}
        timelines: Dict[str, dict] = {}
        if not self._ready():
            return fields, timelines
        for description, key, block, type_ in self.index.fields_in(start, end):
            name = f"{description}.{key}"
            if name in fields:
                continue
            timeline = Field(description, key, block).timeline
            fields[name] = field_info(timeline, description, "", type_ or "number")
            timelines.setdefault(timeline, {"interval": None, "field": []})["field"].append(name)
        return fields, timelines

    def indexed_until(self, names: List[str]) -> Dict[str, float]:
        """Each known name's newest indexed time (its provider's): the archive holds every sample up to it.
        Kept until the index's generation changes, so busy panels share one query."""
        wanted = self.resolve(names)
        with self._lock:
            missing = sorted({f.description for f in wanted.values()} - set(self._until))
            if missing:
                found = self.index.indexed_until(missing)
                self._until.update({d: found.get(d, math.nan) for d in missing})
            until = dict(self._until)
        return {n: until[f.description] for n, f in wanted.items() if not math.isnan(until[f.description])}

    def revisions(self, names: List[str]) -> Dict[str, int]:
        """Each known name's provider revision (:mod:`sisock.g3.revisions`); kept until the index's
        generation changes, as the newest times are."""
        wanted = self.resolve(names)
        with self._lock:
            missing = sorted({f.description for f in wanted.values()} - set(self._revisions))
            if missing:
                found = self.index.revisions(missing)
                self._revisions.update({d: found.get(d) for d in missing})
            known = dict(self._revisions)
        return {n: r for n, r in ((n, known[f.description]) for n, f in wanted.items()) if r is not None}

    def coverage(self, names: List[str], start: float, end: float) -> Dict[str, List[Tuple[float, float]]]:
        """Each known name's archived time ranges meeting ``[start, end]`` (its provider's frames):
        a live sample inside one is in the archive too."""
        wanted = self.resolve(names)
        spans = self.index.coverage(sorted({f.description for f in wanted.values()}), start, end)
        return {n: spans.get(f.description, []) for n, f in wanted.items()}

    # -- get_data ------------------------------------------------------------------
    def data(self, names: List[str], start: float, end: float, min_stride: Optional[float] = None,
             max_points: int = 0) -> Dict[str, Tuple[np.ndarray, Columns]]:
        """``{timeline: (t, {name: values})}`` of the known ``names`` in ``[start, end)``, decimated.

        Undecimated, fields sampled together share their block's timeline. Decimated, each
        numeric field comes on a timeline of its own (named as requested), its slots' first,
        minimum, maximum and last samples; text and bool fields keep their block's timeline.
        """
        wanted = self.resolve(names)
        step = choose_step(start, end, min_stride, max_points or None)
        per_slot = 0 < step < math.inf
        numeric = {n: f for n, f in wanted.items() if per_slot and f.type == "number"}
        others = {n: f for n, f in wanted.items() if n not in numeric}
        result = {timeline: decimate_columns(t, columns, min_stride, max_points or None, (start, end))
                  for timeline, (t, columns) in self._samples(others, [(start, end)], step).items()}
        result.update(self._per_slot(numeric, start, end, step))
        return result

    def _samples(self, wanted: Dict[str, Field], windows: List[Tuple[float, float]],
                 step: float) -> Dict[str, Tuple[np.ndarray, Columns]]:
        """Every sample of ``wanted`` in the ``windows`` (each ``[a, b)``), per timeline; a long
        range is reduced onto the grid of ``step`` as it is read, so memory stays bounded."""
        by_description: Dict[str, Dict[str, List[str]]] = {}
        for name, f in wanted.items():
            by_description.setdefault(f.description, {}).setdefault(f.key, []).append(name)
        pieces: Dict[str, _Timeline] = {}
        for a, b in windows:
            if b <= a or not by_description:
                continue
            for description, blocks, whole in self.frames(list(by_description), a, b):
                _collect(pieces, description, blocks, by_description[description], a, b, whole)
                if 0 < step < math.inf:
                    _compact(pieces, step)
        return {timeline: _assemble(piece) for timeline, piece in pieces.items()}

    def _per_slot(self, wanted: Dict[str, Field], start: float, end: float,
                  step: float) -> Dict[str, Tuple[np.ndarray, Columns]]:
        """Each numeric field's first, minimum, maximum and last sample per slot of ``step``."""
        if not wanted:
            return {}
        tier = summaries.tier_for(step)
        top = summaries.TIERS[tier] if tier is not None else math.inf
        descriptions = sorted({f.description for f in wanted.values()})
        summarized = set()
        if tier is not None and end - start >= summaries.FINE:
            summarized = set(descriptions) - self.index.unsummarized(descriptions, start, end)
        parts: Dict[Tuple[str, str], List[Slots]] = {}
        inner: Dict[Tuple[str, str], Tuple[float, float]] = {}  # what summaries answer, per field
        if summarized:
            assert tier is not None  # summarized is empty otherwise

            def read(cur) -> None:
                stale = summaries.stale(cur, sorted(summarized), start, end)
                for description in sorted(summarized):
                    keys = sorted({f.key for f in wanted.values() if f.description == description})
                    by_edges: Dict[summaries.Edges, List[str]] = {}
                    edges_of = summaries.finest(cur, description, keys, start, end, top, description in stale)
                    for key, edges in edges_of.items():
                        if edges is not None:  # else the field is read from its frames
                            by_edges.setdefault(edges, []).append(key)
                    for edges, group in by_edges.items():
                        lo = math.ceil(start / edges.left) * edges.left
                        hi = math.floor(end / edges.right) * edges.right
                        if lo >= hi:
                            continue
                        inner.update({(description, key): (lo, hi) for key in group})
                        waiting = description in stale
                        left_k, right_k = summaries.TIERS.index(edges.left), summaries.TIERS.index(edges.right)
                        left_end, right_start = math.ceil(start / top) * top, math.floor(end / top) * top
                        # from the file rows: the 60 s tier, a field's finest tier at each edge (coarse
                        # rows hold only finer rows), a stretch holding rows as wide as the top tier, and
                        # everything while the coarse tiers wait for the scanner's refresh
                        top_k = max(left_k, right_k) if waiting else tier
                        for k, a, b in summaries.split(summaries.cover(lo, hi, top_k), edges.wide_lo,
                                                       edges.wide_hi):
                            if k == 0 or waiting or (a < edges.wide_hi and b > edges.wide_lo) or \
                                    (b <= left_end and k <= left_k) or (a >= right_start and k <= right_k):
                                # each row's buckets divide the step's: the last merge combines them
                                for key, found in summaries.file_buckets(cur, description, group, a, b).items():
                                    parts.setdefault((description, key), []).extend(x.slots for x in found)
                            else:
                                got = summaries.coarse_buckets(cur, description, group, summaries.TIERS[k], a, b)
                                for key, slots in got.items():
                                    parts.setdefault((description, key), []).append(slots)
            self.index.run(read)
        # the rest from the samples: the window's edges outside whole buckets, or all of it
        groups: Dict[Tuple[float, float], Dict[str, Field]] = {}
        for name, f in wanted.items():
            groups.setdefault(inner.get((f.description, f.key), (end, end)), {})[name] = f
        for (lo, hi), group in groups.items():
            for t, columns in self._samples(group, [(start, lo), (hi, end)], step).values():
                done = set()
                for name, values in columns.items():
                    key = (group[name].description, group[name].key)
                    if key not in done:
                        done.add(key)
                        parts.setdefault(key, []).append(aggregate(t, values, step))
        result = {}
        for name, f in wanted.items():
            t, v = merge(parts.get((f.description, f.key), []), step).points()
            if len(t):
                result[name] = (t, {name: v})
        return result

    def frames(self, descriptions: List[str], start: float, end: float):
        """Yield ``(description, blocks, whole)`` for each indexed data frame overlapping the window
        (its :func:`unpack`-ed blocks); ``whole`` says that the index puts all of the frame's
        samples inside it."""
        handle, handle_path, stamp = None, None, None
        try:
            for path, _size, _mtime, offset, nbytes, description, t_start, t_end in self.index.frames_in(
                    descriptions, start, end):
                if path != handle_path:
                    if handle is not None:
                        handle.close()
                    handle, handle_path, stamp = self._open(path)
                if handle is None or stamp is None:  # the file could not be opened
                    continue
                blocks = self.cache.get((path, offset), stamp)
                if blocks is None:
                    blocks = self._read(handle, stamp[0], path, offset, nbytes)
                    if blocks is None:
                        continue
                    self.cache.put((path, offset), stamp, nbytes, blocks)
                yield description, blocks, start <= t_start and t_end < end
        finally:
            if handle is not None:
                handle.close()

    def _open(self, path: str):
        """``(handle, path, (size, mtime))`` of a file to read frames from; no handle if it cannot be opened."""
        try:
            handle = open(path, "rb")
            st = os.fstat(handle.fileno())
        except OSError as exc:
            self._warn("cannot read {path}: {error}", path=path, error=exc.strerror or str(exc))
            return None, path, None
        return handle, path, (st.st_size, st.st_mtime_ns)

    def _read(self, handle, size: int, path: str, offset: int, nbytes: int) -> Optional[Tuple[Block, ...]]:
        """The blocks of the frame the index puts at ``offset`` (read from its bytes as the scanner reads
        them, :func:`sisock.g3.rawframe.frame_at`: spt3g only for an unusual frame), or None (logged) if
        the file no longer has it there."""
        data = bytearray(nbytes)  # the index knows the frame's size: one read, into bytes of its own
        try:
            frame, length = rawframe.frame_at(framing.LoadedBytes(handle, size, offset, data), offset)
        except (framing.Truncated, framing.Damaged) as exc:
            self._warn("cannot read the frame at byte {offset} of {path}: {error}; it is left out until the "
                       "scanner reads the file again", offset=offset, path=path, error=str(exc))
            return None
        if length != nbytes:
            self._warn("{path} changed since it was indexed (the frame at byte {offset} is {length} bytes, not "
                       "{nbytes}); it is left out until the scanner reads the file again", path=path, offset=offset,
                       length=length, nbytes=nbytes)
            return None
        if isinstance(frame, rawframe.RawFrame):
            return unpack(frame, data)
        blocks = unpack(frame)
        frame.drop_blobs()  # the cache then holds the decoded objects only, not the bytes too
        return blocks

    def _warn(self, text: str, **values) -> None:
        """A warning, at most one a minute per kind, so one damaged file cannot flood the journal."""
        held = self._throttle.allow(text)
        if held >= 0:
            self.log.warn(text + (" ({held} more such lines held back)" if held else ""), held=held, **values)


def _collect(pieces: Dict[str, _Timeline], description: str, blocks: Tuple[Block, ...],
             keys: Dict[str, List[str]], start: float, end: float, whole: bool = False) -> None:
    """Add the samples of ``keys`` in ``[start, end)`` from one data frame's blocks, as views
    (no copies). ``whole`` (every sample is known to lie inside) skips the per-sample test.
    """
    for block in blocks:
        present = [(names, key) for key, names in keys.items() if key in block]
        if not present or not len(block.ticks):
            continue
        inside = slice(None) if whole else _window(block.ticks, start, end)
        if inside is None:
            continue
        timeline = f"{description}.{block.name}"
        piece = pieces.get(timeline)
        if piece is None:
            piece = pieces[timeline] = _Timeline()
        piece.add_ticks(block.ticks[inside])
        for names, key in present:
            column = block.column(key)[inside]
            for name in names:
                piece.add(name, column)


def _window(ticks: np.ndarray, start: float, end: float):
    """What of ``ticks`` lies in ``[start, end)`` (UNIX s): everything (a slice, no copy), a mask, or None."""
    t = ticks / fmt.TICKS
    if t.min() >= start and t.max() < end:
        return slice(None)
    inside = (t >= start) & (t < end)
    return inside if inside.any() else None


def _compact(pieces: Dict[str, _Timeline], step: float) -> None:
    """Reduce each timeline that has gathered COMPACT_AT samples onto the ``step`` grid."""
    for timeline, piece in pieces.items():
        if piece.length >= COMPACT_AT:
            t, columns = reduce_to_step(*_assemble(piece), step)
            smaller = pieces[timeline] = _Timeline()
            smaller.add_ticks(np.round(t * fmt.TICKS).astype(np.int64))
            for name, values in columns.items():
                smaller.add(name, values)


def _assemble(piece: _Timeline) -> Tuple[np.ndarray, Columns]:
    """One timeline's time-ordered arrays: each piece copied once, times converted in place."""
    t = np.concatenate(piece.ticks, dtype=np.float64)
    t /= fmt.TICKS
    columns = {}
    for name, parts in piece.columns.items():
        if piece.filled[name] < piece.length:
            piece.add(name, parts[-1][:0])
        columns[name] = np.concatenate(parts)
    if np.any(t[1:] < t[:-1]):
        order = np.argsort(t, kind="stable")
        t = t[order]
        columns = {name: v[order] for name, v in columns.items()}
    return t, columns
