"""The InfluxQL executor's :class:`~sisock.influxql.source.Source` over sisock's data nodes.

The catalogue follows the OCS InfluxDB publisher's schema: each archive full name
``observatory.<agent>.feeds.<feed>.<key>`` (the archive's, or a live feed's alias of it) is
field ``key`` of measurement ``observatory.<agent>`` with tag ``feed``, joined across the
archive and the live feeds as one series (:mod:`sisock.http.join`); the fields of a data node
that serves no such name (weather, sensors, ...) are a measurement named after the node. A
data-feed's own lower-cased names are not offered again: its samples are in the OCS measurement.

Buckets come from the nodes' ``get_buckets`` (the g3 reader answers from its summary tiers),
joined names merged exactly from the archive and the live feeds outside the archive's coverage;
samples from ``get_data``, counted first through one bucket each, so a statement over the cap
(InfluxDB's max-select-point) is refused before any sample moves. Times are whole microseconds
on the wire: the executor's nanoseconds end in three zeros.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from sisock import buckets
from sisock.buckets import Found
from sisock.decimate import Slots
from sisock.http import fanout, join
from sisock.http.catalogue import Catalogue
from sisock.http.errors import RequestError
from sisock.http.kept_buckets import Grid, KeptBuckets
from sisock.influxql.conditions import QueryError
from sisock.influxql.source import Buckets, FieldRef, PointLimit
from sisock.wamp_thread import ThreadedSession

#: ``get_fields`` types -> InfluxDB's, where a node gives no ``value_type``.
_TYPES = {"number": "float", "string": "string", "bool": "boolean"}
#: Microseconds the wire's edges are kept within (JSON and CBOR carry integers exactly below 2**53).
_LOWEST, _HIGHEST = 0, 1 << 52

Series = Tuple[np.ndarray, np.ndarray]


def influx_type(info: dict) -> str:
    """InfluxDB's type of a field from its ``get_fields`` entry."""
    given = info.get("value_type") if isinstance(info, dict) else None
    if given in ("float", "integer", "string", "boolean"):
        return str(given)
    return _TYPES.get(info.get("type", "number") if isinstance(info, dict) else "number", "float")


def field_refs(fields: Sequence[Tuple[str, str, dict]]) -> List[FieldRef]:
    """The catalogue (:func:`Catalogue.fields`) as InfluxDB's measurements, tags and fields."""
    feeds = {node for node, field, _ in fields if node != join.ARCHIVE_NODE and join.is_full_name(field)}
    out: Dict[Tuple[str, Tuple[Tuple[str, str], ...], str], FieldRef] = {}
    for node, field, info in sorted(fields, key=lambda entry: entry[0] != join.ARCHIVE_NODE):
        if join.is_full_name(field):
            agent, _, rest = field.partition(".feeds.")
            feed, _, key = rest.partition(".")
            ref = FieldRef(agent, (("feed", feed),), key, influx_type(info), field)
        elif node in feeds:
            continue  # a data-feed's own names: its samples are in the OCS measurement
        else:
            ref = FieldRef(node, (), field, influx_type(info), f"{node}::{field}")
        out.setdefault((ref.measurement, ref.tags, ref.key), ref)  # the archive's type first
    return list(out.values())


def _microseconds(edges_ns: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Edges in whole microseconds (a sample at microsecond ``u`` is in ``[e, ...)`` of nanoseconds
    iff ``u >= ceil(e / 1000)``) kept within what the wire carries, strictly ascending; and for each
    requested bucket the wire bucket it is (-1 for a bucket no microsecond falls in)."""
    micro = np.clip(-(-np.asarray(edges_ns, dtype=np.int64) // 1000), _LOWEST, _HIGHEST)
    wire, position = np.unique(micro, return_inverse=True)
    lo, hi = position[:-1], position[1:]
    return wire, np.where(hi > lo, lo, -1)


class WampSource:
    """A Source over the catalogue and the data nodes, for one request (see the module docstring)."""

    def __init__(self, session: ThreadedSession, catalogue: Catalogue, timeout: float, horizon: float,
                 kept: Optional[KeptBuckets] = None) -> None:
        self.session = session
        self.catalogue_ = catalogue
        self.timeout = timeout
        self.horizon = horizon  # seconds before now that live feeds are asked for (BUFFER_TIME and slack)
        self.kept = kept or KeptBuckets(0)
        #: buckets of numeric fields asked of nodes, and how many of them came from kept runs
        self.buckets_asked = self.buckets_kept = 0
        #: seconds the statements waited on the data nodes, added up
        self.waited = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def _waiting(self) -> Iterator[None]:
        """Count the time of a call to the data nodes in :attr:`waited`."""
        began = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.waited += time.perf_counter() - began

    def catalogue(self) -> List[FieldRef]:
        """Every field, as :func:`field_refs` names it."""
        return field_refs(self.catalogue_.fields())

    def _plan(self, fields: List[FieldRef]) -> Tuple[Dict[str, List[str]], Dict[str, List[str]]]:
        """The names each node is asked for, and the live nodes of the joined ones."""
        wanted: Dict[str, List[str]] = {}
        joined = []
        for f in fields:
            node, _, field = f.name.rpartition("::")
            if not node:
                node, field = join.ARCHIVE_NODE, f.name
                joined.append(f.name)
            names = wanted.setdefault(node, [])
            if field not in names:
                names.append(field)
        return wanted, join.live_plan(joined, self.catalogue_.serving)

    def _live(self, nodes: Dict[str, List[str]], start: float, end: float) -> Optional[fanout.Live]:
        since = max(start, time.time() - self.horizon)
        return fanout.Live(nodes, since, end) if nodes and since < end else None

    def buckets(self, fields: List[FieldRef], edges: np.ndarray, columns: Sequence[str]) -> Dict[FieldRef, Buckets]:
        """Per-bucket aggregates of ``fields`` on ``edges`` (int64 ns), see the module docstring; a
        data node that fails is the statement's error, naming it."""
        try:
            return self._buckets(fields, edges, columns)
        except RequestError as exc:
            raise QueryError(str(exc)) from None

    def _buckets(self, fields: List[FieldRef], edges: np.ndarray, columns: Sequence[str]) -> Dict[FieldRef, Buckets]:
        wire, of_bucket = _microseconds(edges)
        wanted, live_nodes = self._plan(fields)
        if len(wire) < 2:
            return {f: Buckets.empty(len(edges) - 1, float if f.type in ("float", "integer") else object)
                    for f in fields}
        live = self._live(live_nodes, wire[0] / 1e6, wire[-1] / 1e6)
        found = self._nodes_buckets(wanted, wire, list(columns), live)
        out = {}
        for f in fields:
            node, _, field = f.name.rpartition("::")
            parts = [found.get((node or join.ARCHIVE_NODE, field or f.name))]
            if not node and live is not None:
                parts += [_field_buckets(a, f.name, wire) for n, answers in live.answers.items()
                          if f.name in live_nodes.get(n, []) for a in answers]
            out[f] = _to_executor(buckets.merge([p for p in parts if p is not None], wire), wire, of_bucket, f.type)
        return out

    def _nodes_buckets(self, wanted: Dict[str, List[str]], wire: np.ndarray, columns: List[str],
                       live: Optional[fanout.Live]) -> Dict[Tuple[str, str], Found]:
        """Each ``(node, name)``'s buckets on ``wire``, the kept final ones not asked again
        (:mod:`sisock.http.kept_buckets`); a node whose kept revision is stale is asked again, whole."""
        grid = Grid.of(wire)
        cuts = {node: cut for node, names in wanted.items()
                if (cut := self.kept.cut(node, names, columns, grid)) is not None}
        with self._waiting():
            answers = fanout.fetch_buckets(self.session, wanted, wire.tolist(), columns, self.timeout,
                                           self.catalogue_.absence, live, cuts)
        found: Dict[Tuple[str, str], Found] = {}
        stale = {}
        for node, names in wanted.items():
            answer = answers.get(node) or {}
            revisions = answer.get("revisions") or {}
            for name in names:
                got = _field_buckets(answer, name, wire)
                if node in cuts and grid is not None:
                    if got is None and name in revisions:  # known, no bucket asked for holds samples
                        got = Slots.empty()
                    got = self.kept.stitched(node, name, columns, grid, cuts[node], got, revisions.get(name)) \
                        if isinstance(got, Slots) else None
                    if got is None:
                        stale[node] = names
                        break
                if got is not None:
                    found[node, name] = got
        if stale:  # asked again over the whole window (a file rewritten since the buckets were kept)
            with self._waiting():
                answers.update(fanout.fetch_buckets(self.session, stale, wire.tolist(), columns, self.timeout,
                                                    self.catalogue_.absence))
            found.update({(node, name): got for node, names in stale.items() for name in names
                          if (got := _field_buckets(answers.get(node), name, wire)) is not None})
        for (node, name), got in found.items():
            if isinstance(got, Slots):
                self.buckets_asked += len(wire) - 1
                if node in cuts and node not in stale and grid is not None:
                    self.buckets_kept += (cuts[node][1] - cuts[node][0]) // grid.step
                answer = answers.get(node) or {}
                self.kept.keep(node, name, columns, grid, got, (answer.get("revisions") or {}).get(name),
                               (answer.get("finalized_until") or {}).get(name))
        return found

    def samples(self, fields: List[FieldRef], start: int, end: int, limit: int) -> Dict[FieldRef, Series]:
        """Every sample in ``[start, end)`` (ns); PointLimit, before any sample moves, over ``limit``."""
        try:
            return self._samples(fields, start, end, limit)
        except RequestError as exc:
            raise QueryError(str(exc)) from None

    def _samples(self, fields: List[FieldRef], start: int, end: int, limit: int) -> Dict[FieldRef, Series]:
        counts = self._buckets(fields, np.array([start, end], dtype=np.int64), ("count",))
        total = int(sum(int(b.count.sum()) for b in counts.values()))
        if total > limit:
            raise PointLimit(total, limit)
        t0, t1 = -(-start // 1000) / 1e6, -(-end // 1000) / 1e6
        wanted, live_nodes = self._plan(fields)
        live = self._live(live_nodes, t0, t1)
        calls = [fanout.Call(node, fields, t0, t1) for node, fields in wanted.items()]
        with self._waiting():
            answers = dict(zip(wanted, fanout.fetch(self.session, calls, None, self.timeout,
                                                    self.catalogue_.absence, live)))
        out = {}
        for f in fields:
            node, _, field = f.name.rpartition("::")
            if node:
                t, v = join.field_of(node, answers.get(node), field)
            else:
                t, v = join.union_of(f.name, answers.get(join.ARCHIVE_NODE), live.answers if live else {})
            if f.type in ("float", "integer") and len(v):
                held = ~np.isnan(np.asarray(v, dtype=np.float64))  # a NaN is no sample, as in buckets
                t, v = t[held], v[held]
            out[f] = (buckets.microseconds(t) * 1000, _typed(v, f.type))
        return out


def _field_buckets(answer: Optional[dict], name: str, wire: np.ndarray):
    """One field's buckets from a node's ``get_buckets`` answer (None when it has none)."""
    found = ((answer or {}).get("buckets") or {}).get(name)
    return None if found is None else buckets.decode(found, wire)


def _typed(values: np.ndarray, kind: str) -> np.ndarray:
    """Values as the executor holds a field of type ``kind``."""
    if kind == "integer":
        return np.asarray(values, dtype=np.float64).astype(np.int64)
    if kind == "float":
        return np.asarray(values, dtype=np.float64)
    if kind == "boolean":
        return np.asarray([bool(v) for v in values], dtype=object)
    return np.asarray(values, dtype=object)


def _to_executor(found, wire: np.ndarray, of_bucket: np.ndarray, kind: str) -> Buckets:
    """Wire buckets (indexed on ``wire``) as the executor's :class:`Buckets`, one per requested bucket."""
    numeric = kind in ("float", "integer")
    out = Buckets.empty(len(of_bucket), float if numeric else object)
    if isinstance(found, Slots):
        index = np.searchsorted(wire, found.start)
        columns = {"count": found.count, "sum": found.sum, "m2": found.m2, "first_t": found.first_t,
                   "first_v": found.first_v, "min_t": found.min_t, "min_v": found.min_v, "max_t": found.max_t,
                   "max_v": found.max_v, "last_t": found.last_t, "last_v": found.last_v}
    else:
        index = found.index
        columns = {"count": found.count, "first_t": found.first_t, "first_v": found.first_v,
                   "last_t": found.last_t, "last_v": found.last_v}
    place = np.full(len(wire), -1, dtype=np.int64)
    place[index] = np.arange(len(index))
    requested = np.flatnonzero(of_bucket >= 0)
    source = place[of_bucket[requested]]
    held = source >= 0
    at, source = requested[held], source[held]
    for name, values in columns.items():
        values = np.asarray(values)
        if name.endswith("_t"):
            values = values.astype(np.int64) * 1000
        elif name.endswith("_v") and not numeric:
            values = np.asarray([bool(v) if kind == "boolean" else v for v in values], dtype=object)
        getattr(out, name)[at] = values[source]
    return out
