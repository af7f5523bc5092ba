"""Writes housekeeping .g3 files in the aggregator's frame layout (tests, demo, benchmark).

Values are a pure function of (provider, field, time), so whoever wrote an
archive can say exactly which samples any window holds (:meth:`Archive.samples`).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from spt3g import core

from sisock.g3 import format as fmt

Window = Tuple[float, float]


@dataclass(frozen=True)
class Block:
    """Fields sampled together at ``rate`` Hz; ``kind`` is number, int, string or bool;
    ``spikes`` are ``(time, value)`` pairs that replace a number sample."""

    name: str
    fields: Tuple[str, ...]
    rate: float
    kind: str = "number"
    spikes: Tuple[Tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Provider:
    """One OCS feed: ``observatory.<agent>.feeds.<feed>`` and its blocks."""

    description: str
    blocks: Tuple[Block, ...]


def sample_times(rate: float, t0: float, t1: float) -> np.ndarray:
    """Sample times in ``[t0, t1)`` on the grid ``k / rate``, as G3 ticks (int64)."""
    period = int(round(fmt.TICKS / rate))
    first = -(-int(round(t0 * fmt.TICKS)) // period)
    last = -(-int(round(t1 * fmt.TICKS)) // period)
    return np.arange(first, last, dtype=np.int64) * period


def values(description: str, block: Block, name: str, ticks: np.ndarray) -> np.ndarray:
    """The deterministic samples of one field at ``ticks``."""
    seed = zlib.crc32(f"{description}.{name}".encode())
    t = ticks / fmt.TICKS
    if block.kind == "string":
        return np.array([f"state{int(x) % 3}" for x in t // 60])
    if block.kind == "bool":
        return (np.floor(t / 30).astype(np.int64) + seed) % 2 == 0
    v = 50.0 + (seed % 100) + 10.0 * np.sin(t / (300.0 + seed % 997) + seed)
    if block.kind == "int":  # a counter's kind of values, large enough that float sums round
        v = np.round(v * 1e6).astype(np.int64) + (ticks // 10 ** 8) % 1000
    for when, value in block.spikes:
        v[ticks == int(round(when * fmt.TICKS))] = value
    return v


def _vector(kind: str, array: np.ndarray):
    if kind == "string":
        return core.G3VectorString([str(x) for x in array])
    if kind == "bool":
        return core.G3VectorBool([bool(x) for x in array])
    if kind == "int":
        return core.G3VectorInt(np.asarray(array, dtype=np.int64))
    return core.G3VectorDouble(array)


def kind_of(values: np.ndarray) -> str:
    """The writer's kind of a column: number, int, string or bool."""
    kind = np.asarray(values).dtype.kind
    return {"b": "bool", "i": "int", "u": "int", "U": "string", "O": "string", "S": "string"}.get(kind, "number")


def _frame(kind: int, session_id: int, timestamp: float) -> core.G3Frame:
    frame = core.G3Frame(core.G3FrameType.Housekeeping)
    frame["hkagg_type"] = core.G3Int(kind)
    frame["hkagg_version"] = core.G3Int(fmt.HKAGG_VERSION)
    frame["session_id"] = core.G3Int(session_id)
    frame["timestamp"] = core.G3Double(timestamp)
    return frame


class HKFileWriter:
    """One .g3 file: session and status frames first (unless appending), then data frames."""

    def __init__(self, path: Path, providers: Sequence[Provider], start: float,
                 session_id: int = 1, append: bool = False) -> None:
        self.providers = list(providers)
        self.session_id = session_id
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = core.G3Writer(str(path), append=append)
        if not append:
            session = _frame(fmt.SESSION, session_id, start)
            session["start_time"] = core.G3Double(start)
            session["description"] = core.G3String("sisock test aggregator")
            self._writer(session)
            self._writer(self._status(start))

    def _status(self, timestamp: float) -> core.G3Frame:
        frame = _frame(fmt.STATUS, self.session_id, timestamp)
        entries = []
        for prov_id, provider in enumerate(self.providers):
            entry = core.G3MapFrameObject()
            entry["prov_id"] = core.G3Int(prov_id)
            entry["description"] = core.G3String(provider.description)
            entries.append(entry)
        frame["providers"] = core.G3VectorFrameObject(entries)
        return frame

    def data(self, prov_id: int, t0: float, t1: float, gaps: Sequence[Window] = ()) -> int:
        """Write provider ``prov_id``'s samples in ``[t0, t1)`` outside ``gaps``; return how many."""
        provider = self.providers[prov_id]
        blocks = []
        for block in provider.blocks:
            ticks = _outside(sample_times(block.rate, t0, t1), gaps)
            columns = {name: (block.kind, values(provider.description, block, name, ticks))
                       for name in block.fields} if len(ticks) else {}
            blocks.append((block.name, ticks, columns))
        return self._data_frame(prov_id, blocks, t1)

    def frame(self, prov_id: int, blocks: Sequence[Tuple[str, np.ndarray, dict]], timestamp: float) -> int:
        """Write one data frame of provider ``prov_id`` from given samples: ``(block name, G3 ticks,
        {field: values})`` per block (the kind of each column from its dtype); return how many."""
        return self._data_frame(prov_id, [(name, ticks, {key: (kind_of(column), column) for key, column in
                                                         columns.items()}) for name, ticks, columns in blocks],
                                timestamp)

    def _data_frame(self, prov_id: int, blocks: Sequence[Tuple[str, np.ndarray, Dict[str, Tuple[str, np.ndarray]]]],
                    timestamp: float) -> int:
        """One data frame of ``(block name, G3 ticks, {field: (kind, values)})`` (blocks without ticks
        left out; none at all: no frame); how many samples it holds."""
        names, maps, count = [], [], 0
        for name, ticks, columns in blocks:
            if not len(ticks):
                continue
            tsm = core.G3TimesampleMap()
            tsm.times = core.G3VectorTime(np.asarray(ticks, dtype=np.int64))
            for key, (kind, column) in columns.items():
                tsm[key] = _vector(kind, column)
            names.append(name)
            maps.append(tsm)
            count += len(ticks) * len(columns)
        if maps:
            frame = _frame(fmt.DATA, self.session_id, timestamp)
            frame["prov_id"] = core.G3Int(prov_id)
            frame["block_names"] = core.G3VectorString(names)
            frame["blocks"] = core.G3VectorFrameObject(maps)
            self._writer(frame)
        return count

    def flush(self) -> None:
        """Push the frames written so far to the file, as the aggregator does after each frame."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self._writer.flush()
        del self._writer


def _outside(ticks: np.ndarray, gaps: Sequence[Window]) -> np.ndarray:
    keep = np.ones(len(ticks), dtype=bool)
    for g0, g1 in gaps:
        keep &= ~((ticks >= g0 * fmt.TICKS) & (ticks < g1 * fmt.TICKS))
    return ticks[keep]


@dataclass
class Archive:
    """An archive of ``providers`` over ``[start, end)``: one file per ``file_seconds``,
    one data frame per provider per ``frame_seconds``, nothing inside ``gaps``."""

    providers: Sequence[Provider]
    start: float
    end: float
    file_seconds: float = 3600.0
    frame_seconds: float = 60.0
    gaps: Sequence[Window] = field(default_factory=tuple)

    def file_path(self, directory: Path, t0: float) -> Path:
        """The aggregator's naming: ``<first 5 digits of ctime>/<ctime>.g3``."""
        ctime = f"{int(t0):010d}"
        return Path(directory) / ctime[:5] / f"{ctime}.g3"

    def write(self, directory: Path) -> List[Path]:
        """Write every file; return their paths."""
        paths = []
        t0 = self.start
        while t0 < self.end:
            t1 = min(t0 + self.file_seconds, self.end)
            path = self.file_path(directory, t0)
            self.write_file(path, t0, t1)
            paths.append(path)
            t0 = t1
        return paths

    def write_file(self, path: Path, t0: float, t1: float, append: bool = False) -> None:
        """Write (or append) the frames of ``[t0, t1)`` to ``path``."""
        writer = HKFileWriter(path, self.providers, t0, append=append)
        a = t0
        while a < t1:
            b = min(a + self.frame_seconds, t1)
            for prov_id in range(len(self.providers)):
                writer.data(prov_id, a, b, self.gaps)
            a = b
        writer.close()

    def provider(self, description: str) -> Optional[Provider]:
        return next((p for p in self.providers if p.description == description), None)

    def samples(self, description: str, name: str, t0: float, t1: float) -> Tuple[np.ndarray, np.ndarray]:
        """Exactly the ``(t, values)`` of field ``name`` of a provider written in ``[t0, t1)``."""
        provider = self.provider(description)
        assert provider is not None, f"no provider {description!r} was written"
        block = next(b for b in provider.blocks if name in b.fields)
        lo, hi = max(t0, self.start), min(t1, self.end)
        ticks = _outside(sample_times(block.rate, lo, hi), self.gaps) if hi > lo else np.empty(0, np.int64)
        return ticks / fmt.TICKS, values(description, block, name, ticks)


def example_providers(n_providers: int = 3, fields_per_block: int = 4,
                      rates: Sequence[float] = (1.0, 5.0)) -> List[Provider]:
    """A few thermometry-like providers, each with number blocks at ``rates`` and a status string."""
    providers = []
    for i in range(n_providers):
        agent = f"LSA{i:02d}"
        labels = [f"{rate:g}hz".replace(".", "p") for rate in rates]
        blocks = tuple(Block(f"temps_{label}", tuple(f"ch{j}_{label}" for j in range(fields_per_block)), rate)
                       for rate, label in zip(rates, labels))
        blocks += (Block("state", ("state",), 0.1, "string"),)
        providers.append(Provider(f"observatory.{agent}.feeds.temperatures", blocks))
    return providers
