"""``sisock data-feed``: one live OCS feed as a data node (``NAME``).

Subscribes to ``observatory.<TARGET>.feeds.<FEED>`` (over the authenticated
TLS transport, or with ``DATA_FEED_TRANSPORT=ocs`` on the router's open OCS
port) and caches the last ``BUFFER_TIME`` seconds of every field in ring
buffers, one per OCS block: the fields of a block share its timestamps, so
they share a timeline named after the block. Field names follow the original
sisock: lower case, spaces turned into ``_``; each field also answers under the
name the OCS aggregator gives it in the archive, ``observatory.<TARGET>.feeds.<FEED>.<key>``
with the key as published (case kept), so that sisock-http can join it to the archive.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from sisock import heartbeat, log, wamp
from sisock.config import Config, ConfigError
from sisock.datanode import DataNodeServer, data_result, field_info
from sisock.servers.ring_buffer import RingTable
from sisock.metrics.feed import Activity

#: A NAME, TARGET or FEED becomes part of a WAMP URI: no dots, '#' or blanks.
URI_PART = re.compile(r"^[^\s.#]+$")

#: Samples stamped further than this (seconds) in the future are dropped: one bad
#: clock reading must not hold back every later sample of its block.
FUTURE_TOLERANCE = 300.0

#: How many distinct foreign agent addresses are reported before going quiet.
MAX_FOREIGN_REPORTED = 100


class MessageError(ValueError):
    """An event that is not a well-formed OCS feed message (the text says why)."""


class ForeignAgent(MessageError):
    """A message whose ``agent_address`` is not the agent this server follows."""


@dataclass
class Block:
    """One block of a message: sorted times and, per field, a column as long as them."""

    name: str
    t: np.ndarray
    columns: Dict[str, np.ndarray]
    keys: Dict[str, str]  # sisock name -> the field key as published


def field_name(key) -> str:
    """The sisock name of an OCS field: lower case, spaces to ``_`` (as the original did)."""
    return str(key).lower().replace(" ", "_")


def _column(field: str, values, n: int) -> np.ndarray:
    """A field's values as a 1-D array of ``n`` numbers, booleans or strings (None = no value)."""
    try:
        array = np.asarray(values)
        if array.dtype.kind == "O" and not any(isinstance(v, str) for v in array.ravel()):
            array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise MessageError(f"field {field!r}: values are not numbers or strings ({exc})") from None
    if array.dtype.kind == "U":
        array = array.astype(object)
    elif array.dtype.kind == "O" and not all(v is None or isinstance(v, str) for v in array.ravel()):
        raise MessageError(f"field {field!r}: values mix text with other things")
    elif array.dtype.kind not in "biufO":
        raise MessageError(f"field {field!r}: values are not numbers or strings")
    if array.ndim != 1 or len(array) != n:
        raise MessageError(f"field {field!r}: {array.size} values for {n} timestamps")
    return array


def _columns(data: dict, n: int, single: bool) -> Dict[str, np.ndarray]:
    """Every field of a block as a column of ``n`` values; a block of numbers takes one numpy call."""
    names = [field_name(k) for k in data]
    values = [[v] for v in data.values()] if single else list(data.values())
    if all(isinstance(v, list) and v and type(v[0]) in (float, int) for v in values):
        try:
            table = np.array(values, dtype=float)
        except (TypeError, ValueError):
            table = None
        if table is not None and table.shape == (len(names), n):
            # a field of Python ints stays integer (InfluxDB's type of it, as the OCS publisher writes it)
            return {name: row.astype(np.int64) if _all_ints(raw) else row
                    for name, row, raw in zip(names, table, values)}
    return {name: _column(name, v, n) for name, v in zip(names, values)}


def _all_ints(values: list) -> bool:
    """True when every value is a Python int (not a bool), within int64."""
    return all(type(v) is int and -(1 << 63) <= v < (1 << 63) for v in values)


def parse_block(block, default_name: str) -> Block:
    """One block: ``{"block_name", "timestamps": [...], "data": {field: [...]}}`` or with
    ``"timestamp"`` and scalars."""
    if not isinstance(block, dict) or not isinstance(block.get("data"), dict):
        raise MessageError("a block must be a dict with a 'data' dict")
    name = str(block.get("block_name") or default_name)
    if "timestamps" in block:
        raw_t, single = block["timestamps"], False
    elif "timestamp" in block:
        raw_t, single = [block["timestamp"]], True
    else:
        raise MessageError(f"block {name!r} has neither 'timestamps' nor 'timestamp'")
    try:
        t = np.asarray(raw_t, dtype=float)
    except (TypeError, ValueError):
        raise MessageError(f"block {name!r}: timestamps are not numbers") from None
    if t.ndim != 1 or not np.isfinite(t).all():
        raise MessageError(f"block {name!r}: timestamps must be a list of finite numbers")
    columns = _columns(block["data"], len(t), single)
    if len(t) > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, columns = t[order], {k: v[order] for k, v in columns.items()}
    return Block(name, t, columns, {field_name(k): str(k) for k in block["data"]})


def parse_message(data, default_name: str) -> List[Block]:
    """The blocks of a message: a single block, or ``{block_name: block}`` as recorded feeds send."""
    if not isinstance(data, dict):
        raise MessageError("data is not a dict")
    if "data" in data and ("timestamps" in data or "timestamp" in data):
        return [parse_block(data, default_name)]
    if not data:
        raise MessageError("data is empty")
    return [parse_block(block, str(key)) for key, block in data.items()]


def field_type(values: np.ndarray) -> str:
    """The ``get_fields`` type of a column."""
    return {"b": "bool", "O": "string"}.get(values.dtype.kind, "number")


def value_type(values: np.ndarray) -> str:
    """InfluxDB's type of a column, as the OCS publisher writes it (a Python int as an integer)."""
    return {"b": "boolean", "O": "string", "i": "integer", "u": "integer"}.get(values.dtype.kind, "float")


class FeedCache:
    """The last ``buffer_time`` seconds of one agent's feed: a ring buffer per block. Thread-safe."""

    def __init__(self, agent_address: str, buffer_time: float, default_block: str = "data",
                 archive_prefix: str = "") -> None:
        self.agent_address = agent_address
        self.buffer_time = buffer_time
        self.default_block = default_block
        self.archive_prefix = archive_prefix  # "observatory.<TARGET>.feeds.<FEED>." or "": no archive names
        self._keys: Dict[str, str] = {}  # field -> its key as published
        self._blocks: Dict[str, RingTable] = {}
        self._home: Dict[str, str] = {}  # field -> the block that holds it
        self._types: Dict[str, str] = {}
        self._value_types: Dict[str, str] = {}
        #: raised whenever a field appears (its first samples, or again after it had left the buffer)
        self.generation = 0
        self._lock = threading.Lock()

    def add(self, data, feed, now: Optional[float] = None) -> Tuple[int, int]:
        """Cache one ``(data, feed)`` event; return (samples kept, samples dropped: older than the
        block's newest or more than FUTURE_TOLERANCE ahead of ``now``).

        Raises :class:`ForeignAgent` for another agent's message and
        :class:`MessageError` for a malformed one (nothing is cached then).
        """
        if not isinstance(feed, dict) or "agent_address" not in feed:
            raise MessageError("feed is not a dict with an 'agent_address'")
        if feed["agent_address"] != self.agent_address:
            raise ForeignAgent(f"message from {feed['agent_address']!r}, not {self.agent_address!r}")
        blocks = parse_message(data, self.default_block)
        now = time.time() if now is None else now
        kept = dropped = 0
        with self._lock:
            for block in blocks:  # check them all before changing anything
                try:
                    self._blocks.get(block.name, RingTable()).convert(block.columns)
                except (TypeError, ValueError) as exc:
                    raise MessageError(f"block {block.name!r}: {exc}") from None
            for block in blocks:
                k, d = self._add_block(block, now)
                kept, dropped = kept + k, dropped + d
            self._trim(now)
        return kept, dropped

    def _add_block(self, block: Block, now: float) -> Tuple[int, int]:
        table = self._blocks.setdefault(block.name, RingTable())
        t, columns = block.t, block.columns
        keep = t <= now + FUTURE_TOLERANCE
        if table.last_time is not None:
            keep &= t >= table.last_time
        if not keep.all():
            t, columns = t[keep], {k: v[keep] for k, v in columns.items()}
        table.append(t, columns)
        for field, values in columns.items():
            old_home = self._home.get(field)
            if old_home is not None and old_home != block.name and old_home in self._blocks:
                self._blocks[old_home].drop(field)  # the field now lives in this block
            self._home[field] = block.name
            self._keys[field] = block.keys.get(field, field)
            if field not in self._types:
                self._types[field] = field_type(values)
                self._value_types[field] = value_type(values)
                self.generation += 1
        return len(t) * len(columns), (len(block.t) - len(t)) * len(columns)

    def _trim(self, now: float) -> None:
        for name in list(self._blocks):
            table = self._blocks[name]
            table.trim_before(now - self.buffer_time)
            if not len(table):
                del self._blocks[name]
        self._home = {f: b for f, b in self._home.items() if b in self._blocks and self._blocks[b].has(f)}
        self._types = {f: kind for f, kind in self._types.items() if f in self._home}
        self._value_types = {f: kind for f, kind in self._value_types.items() if f in self._home}
        self._keys = {f: key for f, key in self._keys.items() if f in self._home}

    def archive_name(self, field: str) -> Optional[str]:
        """The archive's name of a cached field (None without an archive prefix)."""
        return self.archive_prefix + self._keys.get(field, field) if self.archive_prefix else None

    def _resolve(self, name: str) -> Optional[str]:
        """The cached field a requested name (sisock or archive form) means, or None."""
        if name in self._home:
            return name
        if self.archive_prefix and name.startswith(self.archive_prefix):
            key = name[len(self.archive_prefix):]
            field = field_name(key)
            return field if field in self._home and self._keys.get(field) == key else None
        return None

    @property
    def newest(self) -> Optional[float]:
        """The newest sample time held (None when empty)."""
        with self._lock:
            times = [t for table in self._blocks.values() if (t := table.last_time) is not None]
        return max(times, default=None)

    @property
    def nbytes(self) -> int:
        """Bytes held by the ring buffers."""
        with self._lock:
            return sum(table.nbytes for table in self._blocks.values())

    def fields(self, start: float, end: float, now: Optional[float] = None):
        """``get_fields``: the fields with a value in ``[start, end)``, one timeline per block."""
        fields, timelines = {}, {}
        with self._lock:
            self._trim(time.time() if now is None else now)
            for block, table in self._blocks.items():
                names, interval = table.present(start, end)
                names = [n for n in names if self._home.get(n) == block]
                if not names:
                    continue
                aliases = [a for n in names if (a := self.archive_name(n)) is not None]  # none without a prefix
                timelines[block] = {"interval": interval, "field": names + aliases}
                for name, alias in zip(names, aliases or names):
                    fields[name] = dict(field_info(block, f"{name} of {self.agent_address}", "", self._types[name]),
                                        value_type=self._value_types[name])
                    if aliases:
                        fields[alias] = dict(field_info(block, f"{self._keys[name]} of {self.agent_address}", "",
                                                        self._types[name]), value_type=self._value_types[name])
        return fields, timelines

    def window(self, names: List[str], start: float, end: float) -> dict:
        """``get_data``: copies of the samples of ``names`` in ``[start, end)`` (unknown names left out)."""
        by_block: Dict[str, Dict[str, str]] = {}  # block -> {requested name: cached field}
        with self._lock:
            for name in names:
                field = self._resolve(name)
                if field is not None:
                    by_block.setdefault(self._home[field], {})[name] = field
            timelines = {}
            for block, wanted in by_block.items():
                if block in self._blocks:
                    t, columns = self._blocks[block].window(start, end, sorted(set(wanted.values())))
                    timelines[block] = (t, {name: columns[field] for name, field in wanted.items() if field in columns})
        return data_result(timelines)


def settings(config: Config) -> Tuple[str, str, str, str]:
    """TARGET, FEED, NAME and DESCRIPTION of this instance; ConfigError naming a missing or bad one."""
    for variable in ("TARGET", "FEED", "NAME"):
        value = getattr(config, variable.lower())
        if not value:
            raise ConfigError(f"{variable} is not set: sisock data-feed needs TARGET, FEED and NAME")
        if not URI_PART.match(value):
            raise ConfigError(f"{variable}={value!r}: must not contain dots, '#' or blanks (it is part of a URI)")
    assert config.target and config.feed and config.name  # checked above
    description = config.description or f"OCS feed observatory.{config.target}.feeds.{config.feed}"
    return config.target, config.feed, config.name, description


def event_pair(args: tuple) -> Tuple[object, object]:
    """``(data, feed)`` from an event's arguments: OCS publishes the pair as one list."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])
    if len(args) != 2:
        raise MessageError(f"expected the pair (data, feed), got {len(args)} arguments")
    return args[0], args[1]


class DataFeedServer(DataNodeServer):
    """Serves the cached samples of one OCS feed."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        target, feed, self.name, self.description = settings(config)
        self.topic = f"observatory.{target}.feeds.{feed}"
        self.cache = FeedCache(f"observatory.{target}", config.buffer_time, default_block=feed,
                               archive_prefix=f"{self.topic}.")
        self._foreign: set = set()
        self._throttle = log.Throttle(60.0)
        self.activity = Activity(self.topic, lambda: self.cache.newest, lambda: self.cache.nbytes)
        self.reporter = heartbeat.Reporter(lambda: heartbeat.feed_report(self.topic, self.name, self.activity))

    def components(self) -> list:
        if self.config.data_feed_transport != "ocs":
            return [self.component]
        ocs = wamp.make_component(self.config, "ocs")
        ocs.on("join", lambda session, details: self._subscribe(session, "the OCS port"))
        return [self.component, ocs]

    def on_join(self, session):
        self.reporter.start(session)
        if self.config.data_feed_transport == "tls":
            return self._subscribe(session, "TLS")
        return None

    def _subscribe(self, session, via: str):
        d = session.subscribe(self.receive, self.topic)
        d.addCallback(lambda _: self.log.info("subscribed to {topic} over {via}", topic=self.topic, via=via))
        return d

    def receive(self, *args, **kwargs) -> None:
        """Handle one feed event in the reactor: parse and append (cheap numpy work only)."""
        fields_before = self.cache.generation
        try:
            kept, dropped = self.cache.add(*event_pair(args))
        except ForeignAgent as exc:
            self.activity.refused("foreign")
            if len(self._foreign) < MAX_FOREIGN_REPORTED and str(exc) not in self._foreign:
                self._foreign.add(str(exc))
                self.log.warn("ignoring {topic}: {error}", topic=self.topic, error=str(exc))
            return
        except MessageError as exc:
            self.activity.refused("malformed")
            held = self._throttle.allow("malformed")
            if held >= 0:
                self.log.warn("dropped a malformed message on {topic}: {error} ({held} more since the last "
                              "such line)", topic=self.topic, error=str(exc), held=held)
            return
        self.activity.message(kept, dropped)
        if self.cache.generation != fields_before:
            self.announce()  # sisock-http reads the new fields now: a joined name answers at once
        if dropped and self._throttle.allow("dropped") >= 0:
            self.log.warn("dropped {n} samples on {topic}: older than the newest cached ones or more than "
                          "{ahead} s ahead of this clock (one line a minute at most)", n=dropped, topic=self.topic,
                          ahead=FUTURE_TOLERANCE)

    def get_fields(self, start: float, end: float):
        return self.cache.fields(start, end)

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        return self.cache.window(fields, start, end)


def main(args, config: Config) -> int:
    """Run one data-feed instance until SIGTERM."""
    return DataFeedServer(config).run()
