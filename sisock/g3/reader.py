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
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import txaio
from spt3g import core

from sisock import log
from sisock.buckets import COLUMNS, Found, around_cut, microseconds, of_samples
from sisock.buckets import merge as merge_buckets
from sisock.datanode import field_info, outside
from sisock.decimate import Slots, aggregate, choose_step, concat, decimate_columns, merge, merge_edges, reduce_to_step
from sisock.g3 import format as fmt
from sisock.g3 import framing, rawframe, schema, summaries, tiers
from sisock.g3.tiers import Key, Window
from sisock.lru import SizedLRU
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


#: InfluxDB's field type of a field whose own the index does not know yet (an index being upgraded).
VALUE_TYPES = {"number": "float", "string": "string", "bool": "boolean"}


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
    """A field of the archive: its provider, key in the block, block (= timeline), type
    (``get_fields``') and InfluxDB field type (``float``, ``integer``, ``string``, ``boolean``)."""

    description: str
    key: str
    block: str
    type: str = "number"
    value_type: str = "float"

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


def field_of(description: str, key: str, block: str, type_: Optional[str], value_type: Optional[str]) -> Field:
    """A field from its catalogue row (a value type not filled in yet follows its type)."""
    type_ = type_ or "number"
    return Field(description, key, block, type_, value_type or VALUE_TYPES.get(type_, "float"))


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
        for description, key, block, type_, value_type in sorted(self.index.known_fields()):
            f = field_of(description, key, block, type_, value_type)
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
        for description, key, block, type_, value_type in self.index.fields_in(start, end):
            name = f"{description}.{key}"
            if name in fields:
                continue
            f = field_of(description, key, block, type_, value_type)
            fields[name] = field_info(f.timeline, description, "", f.type, f.value_type)
            timeline = f.timeline
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
        def compact(piece: _Timeline) -> _Timeline:
            return _reduced(piece, step) if 0 < step < math.inf else piece
        return {timeline: _assemble(piece) for timeline, piece in self._gather(wanted, windows, compact).items()}

    def _gather(self, wanted: Dict[str, Field], windows: List[Tuple[float, float]],
                full: Callable[[_Timeline], Optional[_Timeline]]) -> Dict[str, _Timeline]:
        """The samples of ``wanted`` in the ``windows``, per timeline, frame by frame; a timeline that
        has gathered COMPACT_AT samples goes to ``full``, which gives what to keep of it (None: nothing,
        it has taken them), so memory stays bounded however long the range is."""
        by_description: Dict[str, Dict[str, List[str]]] = {}
        for name, f in wanted.items():
            by_description.setdefault(f.description, {}).setdefault(f.key, []).append(name)
        pieces: Dict[str, _Timeline] = {}
        for a, b in windows:
            if b <= a or not by_description:
                continue
            for description, blocks, whole in self.frames(list(by_description), a, b):
                _collect(pieces, description, blocks, by_description[description], a, b, whole)
                for timeline in [t for t, piece in pieces.items() if piece.length >= COMPACT_AT]:
                    kept = full(pieces.pop(timeline))
                    if kept is not None:
                        pieces[timeline] = kept
        return pieces

    def _per_slot(self, wanted: Dict[str, Field], start: float, end: float,
                  step: float) -> Dict[str, Tuple[np.ndarray, Columns]]:
        """Each numeric field's first, minimum, maximum and last sample per slot of ``step``: the
        summary tiers where they tile the slots, the samples elsewhere (:mod:`sisock.g3.tiers`)."""
        if not wanted:
            return {}
        found = tiers.read(self.index, _keys(wanted), start, end, summaries.tier_for(step))
        parts = {key: [b.slots for b in rows] for key, rows in found.parts.items()}
        for windows, group in _by_windows(wanted, found.rest).items():
            for t, columns in self._samples(group, list(windows), step).values():
                for key, values in _distinct(group, columns):
                    parts.setdefault(key, []).append(aggregate(t, values, step))
        result = {}
        for name, f in wanted.items():
            t, v = merge(parts.get((f.description, f.key), []), step).points()
            if len(t):
                result[name] = (t, {name: v})
        return result

    def _without_nan(self, key: Tuple[str, str], rows: List[summaries.Buckets], unknown: List[Tuple[float, float]],
                     covered: List[Tuple[float, float]]) -> Tuple[List[Slots], List[Tuple[float, float]]]:
        """A field's rows as :func:`sisock.buckets.of_samples` counts samples, a NaN being none:
        ``(slots kept, windows left to the samples)``. A slot of NaN only goes; around one holding some
        NaN, the rows give way to the file rows (a coarse bucket to its minutes), and around those
        holding some NaN, to the samples: what is read grows with the NaN, not the span. "Around": the
        bucket of the widest row there, within what the rows cover (``covered``), so that no row is
        counted twice, one of another file or width in the same span included."""
        kept, mixed = _nan_free(rows, unknown)
        if not mixed:
            return kept, []
        first = _around(mixed, max(b.width for b in rows), covered)
        description, field_key = key
        finer = self.index.run(lambda cur: [b for a, z in first for b in summaries.file_buckets(
            cur, description, [field_key], a, z).get(field_key, [])])
        clean, mixed = _nan_free(finer, unknown)
        second = _around(mixed, max(b.width for b in finer), covered) if mixed else []
        return [_outside(s, first) for s in kept] + [_outside(s, second) for s in clean], second

    # -- get_buckets -----------------------------------------------------------------
    def buckets(self, names: List[str], edges: np.ndarray, columns: Sequence[str] = COLUMNS,
                spans: Optional[np.ndarray] = None, cut: Optional[Tuple[int, int]] = None) -> Dict[str, Found]:
        """Per-bucket aggregates of the known ``names`` on ``edges`` (int64 whole microseconds; bucket k
        is ``[edges[k], edges[k+1])``), leaving out the samples in ``spans`` (``exclude``'s ranges):
        ``{name: Slots or TextBuckets}`` (:mod:`sisock.buckets`, times in microseconds), each equal to
        :func:`sisock.buckets.of_samples` of every sample.

        Numeric fields come from the coarsest tier whose width divides every edge inside the window
        (:mod:`sisock.g3.tiers`), in constant time per span; the window's two ends, what no tier tiles
        and the holes are read from the samples: the excluded ranges, and, when ``columns`` ask for
        moments, the files whose rows lack them (an index being upgraded). Text and boolean fields
        come from their samples.

        With ``cut=(a, b)`` (two of the edges) the buckets between them are left out: the edges before
        and after are read on their own, from the tier the whole edges take, so each bucket is the
        whole answer's to the last bit (sisock-http keeps the others)."""
        wanted = self.resolve(names)
        edges = np.asarray(edges, dtype=np.int64)
        tier = _tier_of(edges)
        if cut is None:
            return self._buckets_on(wanted, edges, columns, spans, tier)
        return around_cut(edges, cut, lambda sub: self._buckets_on(wanted, sub, columns, spans, tier))

    def _buckets_on(self, wanted: Dict[str, Field], edges: np.ndarray, columns: Sequence[str],
                    spans: Optional[np.ndarray], tier: Optional[int]) -> Dict[str, Found]:
        """:meth:`buckets` on ``edges``, numeric fields from ``tier``'s rows."""
        numeric = {n: f for n, f in wanted.items() if f.type == "number"}
        parts, rest = self._bucket_rows(numeric, edges, columns, spans, tier)
        start, end = float(edges[0]) / 1e6, float(edges[-1]) / 1e6
        rest.update({key: [(start, end)] for key in _keys({n: f for n, f in wanted.items() if n not in numeric})})
        self._bucket_samples(wanted, rest, edges, spans, parts)
        out: Dict[str, Found] = {}
        for name, f in wanted.items():
            mine = parts.get((f.description, f.key), [])
            out[name] = merge_edges(mine, edges) if f.type == "number" else merge_buckets(mine, edges)
        return out

    def _bucket_rows(self, numeric: Dict[str, Field], edges: np.ndarray, columns: Sequence[str],
                     spans: Optional[np.ndarray],
                     tier: Optional[int]) -> Tuple[Dict[Key, list], Dict[Key, List[Window]]]:
        """:meth:`buckets`' rows of the numeric fields (slots in microseconds, from ``tier``), and the
        windows left to their samples."""
        start, end = float(edges[0]) / 1e6, float(edges[-1]) / 1e6
        holes: Dict[str, List[Tuple[float, float]]] = {}
        unknown: Dict[str, List[Tuple[float, float]]] = {}  # where rows lack moments
        descriptions = sorted({f.description for f in numeric.values()})
        if tier is not None and numeric:
            unknown = self.index.without_moments(descriptions, start, end)
            if "sum" in columns or "m2" in columns:
                holes = {d: list(found) for d, found in unknown.items()}
        if spans is not None and len(spans):
            for description in descriptions:
                holes.setdefault(description, []).extend(map(tuple, spans.tolist()))
        # rows without moments say where NaN are only by a slot of NaN alone, or a NaN first or last
        # value: the file rows (minutes) answer those spans, not the coarse rows made of them
        found = tiers.read(self.index, _keys(numeric), start, end, tier, holes, unknown)
        rest = dict(found.rest)
        parts: Dict[Tuple[str, str], list] = {}
        for key, rows in found.parts.items():
            assert tier is not None  # there are rows only with a tier
            kept, redo = self._without_nan(key, rows, tiers.widened(unknown.get(key[0], []), summaries.TIERS[tier]),
                                           tiers.minus(start, end, found.rest.get(key, [])))
            parts[key] = [_in_microseconds(concat(kept))]
            if redo:
                rest[key] = summaries.merged(rest.get(key, []) + redo)
        return parts, rest

    def _bucket_samples(self, wanted: Dict[str, Field], rest: Dict[Key, List[Window]], edges: np.ndarray,
                        spans: Optional[np.ndarray], parts: Dict[Key, list]) -> None:
        """Add to ``parts`` the buckets of the samples in each field's windows of ``rest`` (outside
        ``spans``), reduced as they are read, so memory stays bounded."""
        start = float(edges[0]) / 1e6
        for windows, group in _by_windows(wanted, rest).items():
            # a sample less than half a microsecond before the first edge is in the first bucket (its time
            # in whole microseconds is the edge's), as buckets.of_samples puts it
            windows = tuple((a - tiers.SLACK if a == start else a, b) for a, b in windows)

            def take(piece: _Timeline, group=group) -> None:
                t, samples = _assemble(piece)
                keep = None if spans is None else outside(t, spans)
                t_us = microseconds(t if keep is None else t[keep])
                for key, values in _distinct(group, samples):
                    parts.setdefault(key, []).append(of_samples(t_us, values if keep is None else values[keep],
                                                                edges))
            for piece in self._gather(group, list(windows), take).values():
                take(piece)

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


def _reduced(piece: _Timeline, step: float) -> _Timeline:
    """A timeline's samples reduced onto the ``step`` grid (M4: what a later reduction keeps of them)."""
    t, columns = reduce_to_step(*_assemble(piece), step)
    smaller = _Timeline()
    smaller.add_ticks(np.round(t * fmt.TICKS).astype(np.int64))
    for name, values in columns.items():
        smaller.add(name, values)
    return smaller


def _keys(wanted: Dict[str, Field]) -> List[Tuple[str, str]]:
    """The distinct ``(description, key)`` of the fields asked for (two names may be one field)."""
    return sorted({(f.description, f.key) for f in wanted.values()})


def _by_windows(wanted: Dict[str, Field], rest: Dict[Tuple[str, str], List[Tuple[float, float]]]
                ) -> Dict[Tuple[Tuple[float, float], ...], Dict[str, Field]]:
    """The fields grouped by the windows left to their samples (fields of one block read together)."""
    groups: Dict[Tuple[Tuple[float, float], ...], Dict[str, Field]] = {}
    for name, f in wanted.items():
        windows = tuple(rest.get((f.description, f.key), ()))
        if windows:
            groups.setdefault(windows, {})[name] = f
    return groups


def _distinct(group: Dict[str, Field], columns: Columns) -> Iterator[Tuple[Tuple[str, str], np.ndarray]]:
    """``((description, key), values)`` of each field once, however many names asked for it."""
    done = set()
    for name, values in columns.items():
        key = (group[name].description, group[name].key)
        if key not in done:
            done.add(key)
            yield key, values


def _tier_of(edges: np.ndarray) -> Optional[int]:
    """The coarsest tier whose width (in whole microseconds) divides every edge inside the window
    (any tier for a single bucket), or None."""
    inside = edges[1:-1]
    for k in range(len(summaries.TIERS) - 1, -1, -1):
        if not np.any(inside % int(summaries.TIERS[k] * 1e6)):
            return k
    return None


def _nan_free(rows: List[summaries.Buckets],
              unknown: List[Tuple[float, float]]) -> Tuple[List[Slots], List[Tuple[float, float]]]:
    """``(slots without NaN, spans of the slots holding some)``: a slot of NaN only (its minimum is
    NaN) goes; one with some NaN has NaN moments (where rows lack moments, ``unknown``, a NaN shows
    only as its first or last value)."""
    if not rows:
        return [], []
    s = concat([b.slots for b in rows])  # every row at once: a file row each would cost its numpy calls
    widths = np.repeat([b.width for b in rows], [len(b.slots) for b in rows])
    only = np.isnan(s.min_v)
    some = np.isnan(s.sum)
    if unknown:
        there = _within(s.start, unknown)
        some = np.where(there, np.isnan(s.first_v) | np.isnan(s.last_v), some)
    some &= ~only
    kept = s if not (only.any() or some.any()) else s.take(~only & ~some)
    spans = [(float(a), float(a) + float(w)) for a, w in zip(s.start[some].tolist(), widths[some].tolist())]
    return [kept], spans


def _around(spans: List[Tuple[float, float]], width: float,
            covered: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
    """``spans`` grown to whole buckets of ``width`` (every row of that width or finer lies wholly
    inside or outside them), within ``covered`` (sorted), merged."""
    grown = summaries.merged([(math.floor(a / width) * width, math.ceil(b / width) * width) for a, b in spans])
    return [(max(a, c), min(b, d)) for a, b in grown for c, d in covered if max(a, c) < min(b, d)]


def _outside(slots: Slots, spans: List[Tuple[float, float]]) -> Slots:
    """The slots starting outside ``spans`` (sorted, disjoint)."""
    if not spans or not len(slots):
        return slots
    inside = _within(slots.start, spans)
    return slots.take(~inside) if inside.any() else slots


def _within(t: np.ndarray, spans: List[Tuple[float, float]]) -> np.ndarray:
    """A mask of the times ``t`` inside ``spans`` (``[a, b)``, sorted, disjoint)."""
    lows, highs = np.array(spans).T
    k = np.searchsorted(lows, t, side="right") - 1
    return (k >= 0) & (t < highs[np.maximum(k, 0)])


def _in_microseconds(slots: Slots) -> Slots:
    """Slots of the tiers (seconds) with their starts and times in whole microseconds, as buckets carry
    them (:func:`sisock.buckets.microseconds`: a sample's time is the same however it is read)."""
    return Slots(np.rint(slots.start * 1e6).astype(np.int64), slots.count, microseconds(slots.first_t),
                 slots.first_v, microseconds(slots.min_t), slots.min_v, microseconds(slots.max_t), slots.max_v,
                 microseconds(slots.last_t), slots.last_v, slots.sum, slots.m2)


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
