"""The samples of the InfluxQL conformance tests, written to a real influxd in the OCS InfluxDB
publisher's schema and held by sisock's in-memory Source: the same points on both sides.

The publisher (ocs ``influxdb_drivers.format_data``) writes one line per block timestamp:
measurement = the agent address, tag ``feed`` = the feed name, fields = the block's keys (Python
floats as written, ints with ``i``, strings quoted, bools as True/False), the timestamp
``int(t * 1e9)`` nanoseconds from float seconds. Non-OCS data nodes are measurements of their own,
without tags.

What is in it: several agents and feeds (one field key in two feeds of one agent), float, integer,
string and boolean fields, two blocks of one feed at different rates, a gap after which a new
session starts, a one-sample spike, a counter that resets, a provider that appears late, a node
that is no OCS feed, and a stretch of samples ending at the time the data is made (for now()).
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from sisock.influxql.source import FieldRef, MemorySource

DB = "ocs_feeds"
START = calendar.timegm((2026, 11, 1, 0, 0, 0))  # 2026-11-01T00:00:00Z
DAY = 86400.0
SPIKE_AT = START + 51840.0  # Channel_01_T's one-sample spike (on its 10 s grid)
SPIKE = 1000.5


@dataclass
class Block:
    """One block of an OCS feed (or a non-OCS node's fields): timestamps (float s) and columns."""

    measurement: str
    feed: str  # "" for a node that is no OCS feed (no tag)
    times: np.ndarray
    columns: Dict[str, list]


def _times(start: float, end: float, step: float, gaps: Sequence[Tuple[float, float]] = ()) -> np.ndarray:
    t = start + np.arange(int((end - start) / step)) * step
    for a, b in gaps:
        t = t[(t < a) | (t >= b)]
    return t


def _walk(rng: np.random.Generator, n: int, level: float, scale: float) -> List[float]:
    return [float(x) for x in level + np.cumsum(rng.standard_normal(n)) * scale]


def blocks(now: float) -> List[Block]:
    """Every block of the data set (``now``: end of the recent stretch, float seconds)."""
    rng = np.random.default_rng(22)
    out: List[Block] = []
    lsa = "observatory.LSA22YE"
    # temperatures: every 10 s for two days, a 3 h gap (a new session after it), a spike
    t = _times(START, START + 2 * DAY, 10.0, gaps=[(START + 1.2 * DAY, START + 1.2 * DAY + 3 * 3600)])
    ch1 = _walk(rng, len(t), 0.1, 0.001)
    ch1[int(np.searchsorted(t, SPIKE_AT))] = SPIKE
    out.append(Block(lsa, "temperatures", t, {"Channel_01_T": ch1, "Channel_02_T": _walk(rng, len(t), 4.0, 0.01),
                                              "Channel_01_R": _walk(rng, len(t), 1200.0, 0.5)}))
    # the same feed's second block, at another rate: an integer and a string
    t = _times(START + 7.0, START + 2 * DAY, 300.0)
    heater = [int(x) for x in rng.choice([0, 1, 2, 3, 5], size=len(t), p=[0.05, 0.15, 0.5, 0.2, 0.1])]
    state = [str(x) for x in rng.choice(["idle", "ramping", "stable"], size=len(t), p=[0.2, 0.3, 0.5])]
    out.append(Block(lsa, "temperatures", t, {"heater_range": heater, "state": state}))
    # another feed of the same agent with a field key of the same name, sampled 3 s apart from the first
    t = _times(START + 3.0, START + 2 * DAY, 60.0)
    out.append(Block(lsa, "diagnostics", t, {"Channel_01_T": _walk(rng, len(t), 0.2, 0.002),
                                             "uptime": [int(x) for x in 1000 + np.arange(len(t)) * 60]}))
    # pressures: a float, a counter that resets, a boolean valve
    bf = "observatory.bluefors"
    t = _times(START + 1.5, START + 2 * DAY, 30.0)
    counter = np.cumsum(rng.integers(0, 7, size=len(t)))
    counter[len(t) // 2:] -= counter[len(t) // 2]  # a reset
    out.append(Block(bf, "pressures", t, {"p1": _walk(rng, len(t), 1e-3, 1e-5),
                                          "counter": [int(x) for x in counter]}))
    t = _times(START + 2.25, START + 2 * DAY, 1800.0)
    out.append(Block(bf, "pressures", t, {"valve_open": [bool(x) for x in rng.integers(0, 2, size=len(t))]}))
    # a provider that appears late (second day only)
    t = _times(START + DAY + 0.3, START + 2 * DAY, 20.3)
    out.append(Block("observatory.late", "hk", t, {"v": _walk(rng, len(t), 50.0, 0.2)}))
    # a data node that is no OCS feed
    t = _times(START + 30.0, START + 2 * DAY, 60.0)
    out.append(Block("apex_archive", "", t, {"temperature": _walk(rng, len(t), -3.0, 0.05),
                                             "humidity": _walk(rng, len(t), 20.0, 0.1)}))
    # the live edge: the last two days up to ``now``
    end = float(int(now // 10) * 10)
    t = _times(end - 2 * DAY, end, 10.0)
    out.append(Block("observatory.live", "hk", t, {"T": _walk(rng, len(t), 4.2, 0.001),
                                                   "ok": [bool(x) for x in rng.integers(0, 5, size=len(t)) > 0]}))
    return out


def _ns(t: float) -> int:
    return int(t * 1e9)  # as the publisher computes it


def _value(v: object) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def exact_ns(t: float) -> int:
    """The time a float second stands for, to the microsecond (what sisock serves of it)."""
    return int(round(t * 1e6)) * 1000


def line_protocol(data: Sequence[Block], stamp=_ns) -> str:
    """The lines the publisher would write for these blocks (``stamp``: float seconds to ns; the
    publisher's truncating ``int(t * 1e9)`` by default)."""
    lines = []
    for b in data:
        head = b.measurement + (f",feed={b.feed}" if b.feed else "")
        keys = list(b.columns)
        for i, t in enumerate(b.times.tolist()):
            fields = ",".join(f"{k}={_value(b.columns[k][i])}" for k in keys)
            lines.append(f"{head} {fields} {stamp(t)}")
    return "\n".join(lines) + "\n"


_TYPES = {bool: "boolean", int: "integer", str: "string", float: "float"}


def memory_source(data: Sequence[Block]) -> MemorySource:
    """The same samples in sisock's in-memory Source."""
    held: Dict[FieldRef, Tuple[List[int], list]] = {}
    for b in data:
        tags = (("feed", b.feed),) if b.feed else ()
        for key, values in b.columns.items():
            kind = _TYPES[type(values[0])]
            name = f"{b.measurement}.feeds.{b.feed}.{key}" if b.feed else f"{b.measurement}::{key}"
            ref = FieldRef(b.measurement, tags, key, kind, name)
            t, v = held.setdefault(ref, ([], []))
            t.extend(_ns(x) for x in b.times.tolist())
            v.extend(values)
    out = {}
    for ref, (t, v) in held.items():
        order = np.argsort(np.array(t, dtype=np.int64), kind="stable")
        dtype = {"float": float, "integer": np.int64, "boolean": bool, "string": object}[ref.type]
        out[ref] = (np.array(t, dtype=np.int64)[order], np.array(v, dtype=dtype)[order])
    return MemorySource(out)
