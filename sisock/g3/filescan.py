"""Reading one .g3 file for the index: where its data frames are, its providers, fields and summaries.

The scanner's worker processes (:mod:`sisock.g3.parallel`) import this module
alone to read files, so it imports only spt3g, numpy and the modules the read
needs: a worker that imported the scanner (and with it Twisted and autobahn)
took about a second to start, a third of a first scan of a 1 GB archive.
"""
from __future__ import annotations

import gc
import hashlib
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
from spt3g import core

from sisock.g3 import framing, rawframe
from sisock.g3 import format as fmt
from sisock.g3.summaries import FrameAggregator, Packed

#: The largest read buffer a process keeps for its next file (:class:`_ReadBuffer`).
KEEP_BUFFER_BYTES = 256 << 20
#: Bytes just before the end of what was read that, with the inode, identify a file's content so far.
FINGERPRINT_BYTES = 4096


@dataclass
class FrameEntry:
    """One data frame found by a scan."""

    prov_id: int
    byte_offset: int
    nbytes: int
    t_start: float
    t_end: float


@dataclass
class FieldEntry:
    """A field of one provider in one file: its block, type (``get_fields``'), time range and
    InfluxDB field type (``float``, ``integer``, ``string``, ``boolean``)."""

    block: str
    type: str
    start: float
    end: float
    value_type: str = "float"


@dataclass
class FileScan:
    """The result of reading a file from ``start_offset`` on (:func:`read_file`)."""

    start_offset: int
    scanned_to: int
    status: str
    error: Optional[str]
    providers: Dict[int, str]
    frames: List[FrameEntry]
    fields: Dict[Tuple[int, str], FieldEntry]
    #: identifies the bytes read so far (:func:`fingerprint`)
    fingerprint: Optional[str] = None
    #: aggregates of each numeric field of the frames read, encoded, by (prov_id, field key)
    summaries: Dict[Tuple[int, str], Packed] = field(default_factory=dict)


def fingerprint(handle, upto: int) -> str:
    """The file's inode and a hash of the bytes just before ``upto``: a file rewritten in place
    and then grown (not merely appended to) no longer matches."""
    handle.seek(max(0, upto - FINGERPRINT_BYTES))
    data = handle.read(min(upto, FINGERPRINT_BYTES))
    return f"{os.fstat(handle.fileno()).st_ino}:{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def read_file(path: Path, start_offset: int = 0, providers: Optional[Dict[int, str]] = None,
              finished: bool = False, summarise: bool = True) -> FileScan:
    """Read a file's frames from ``start_offset`` on: where each data frame is, its providers and fields.

    A frame that cannot be read is skipped and the next one that can is found; a cut-off last
    frame ends the read (``scanned_to`` stays before it) unless the file is ``finished``, when
    it is damage too. Any damage makes the scan ``bad``, with the first damaged byte and why.
    ``summarise`` off leaves the summaries out (what a scan cost before them: the benchmark's).
    """
    scan = FileScan(start_offset, start_offset, "ok", None, dict(providers or {}), [], {})
    blocks = _Blocks(FrameAggregator() if summarise else None)
    damage: List[str] = []
    with _collector_paused(), open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        with _BUFFER.lease(max(0, size - start_offset)) as buffer:
            _read_frames(framing.LoadedBytes(handle, size, start_offset, buffer), scan, blocks, finished, damage)
            scan.frames, scan.fields = blocks.frames_and_fields()
            scan.summaries = blocks.aggregator.result() if blocks.aggregator is not None else {}
            del blocks  # its views of the buffer
        scan.fingerprint = fingerprint(handle, scan.scanned_to)
    if damage:
        more = f" (and {len(damage) - 1} more damaged places)" if len(damage) > 1 else ""
        scan.status, scan.error = "bad", damage[0] + more
    return scan


def _read_frames(source: framing.LoadedBytes, scan: FileScan, blocks: "_Blocks", finished: bool,
                 damage: List[str]) -> None:
    """Read frame after frame from ``scan.start_offset`` into ``blocks`` (:func:`read_file`)."""
    position = scan.start_offset
    while position < source.size:
        try:
            frame, length = rawframe.frame_at(source, position)
        except (framing.Truncated, framing.Damaged) as exc:
            later = framing.next_frame(source, position + 1)
            if later is None and isinstance(exc, framing.Truncated) and not finished:
                break  # still being written: read on from here next time
            cut = " and the file is no longer written" if later is None and isinstance(exc, framing.Truncated) \
                else ""
            damage.append(f"unreadable frame at byte {position}: {exc}{cut}")
            if later is None:
                break
            position = later
            continue
        if isinstance(frame, rawframe.RawFrame):
            blocks.add(frame.prov_id, position, length, zip(frame.names, frame.blocks))
        else:
            blocks.take(scan, frame, position, length)
        position += length
        scan.scanned_to = position


class _ReadBuffer:
    """The memory a process reads its files into, kept for the next file: fresh memory costs a
    page fault every 4 KiB (about 1 us on a VM: a fifth of a read). One read at a time holds it
    (another thread's read gets memory of its own), and it is reused only when nothing views it
    any more (a bytearray with views cannot be resized), else a new one is made."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.lock = threading.Lock()

    @contextmanager
    def lease(self, nbytes: int) -> Iterator[bytearray]:
        """A buffer of at least ``nbytes`` that nothing else uses, for the ``with`` block."""
        if not self.lock.acquire(blocking=False):
            yield bytearray(nbytes)
            return
        try:
            try:
                self.buffer.append(0)  # BufferError if a view of it lives on
                del self.buffer[-1]
            except BufferError:
                self.buffer = bytearray()
            if len(self.buffer) < nbytes:
                self.buffer = bytearray()  # the old memory goes before the new comes
                self.buffer = bytearray(nbytes)
            buffer = self.buffer
            if len(buffer) > KEEP_BUFFER_BYTES:
                self.buffer = bytearray()
            yield buffer
        finally:
            self.lock.release()


_BUFFER = _ReadBuffer()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for one read (the scanner reads in one thread at a time): a read
    makes no cycles, but the objects of the blocks it keeps made the collector, run by their
    allocations, go over them again and again (a tenth of a read with summaries)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Blocks:
    """The blocks of one read's data frames, gathered per layout and reduced once at its end.

    A frame costs a few appends: its blocks' time ranges come from one reduction per layout
    over the whole read, not two numpy calls per block. Its blocks are read from its bytes;
    where spt3g must decode them, a block's layout is the one its provider's block of that
    name had last unless its keys changed (spt3g makes a list of keys at several microseconds a key).
    """

    def __init__(self, aggregator: Optional[FrameAggregator]) -> None:
        self.aggregator = aggregator
        #: (prov_id, block name) -> the keys and types its block had last, where spt3g decoded it
        self.layouts: Dict[Tuple[int, str], Tuple[tuple, tuple]] = {}
        #: (keys, types) -> the places of the numeric keys, and those keys
        self.numeric: Dict[Tuple[tuple, tuple], Tuple[Tuple[int, ...], Tuple[str, ...]]] = {}
        #: (prov_id, block name, keys, types) -> its number
        self.groups: Dict[tuple, int] = {}
        #: each block's ticks, and the numbers of its group and of its frame
        self.ticks: List[np.ndarray] = []
        self.owners: List[Tuple[int, int]] = []
        #: (prov_id, byte offset, bytes) of each data frame that has samples
        self.entries: List[Tuple[int, int, int]] = []

    def take(self, scan: FileScan, frame: core.G3Frame, offset: int, nbytes: int) -> None:
        """Add one frame decoded by spt3g: a status frame names providers, a data frame's blocks are kept."""
        kind = fmt.kind(frame)
        if kind == fmt.STATUS:
            scan.providers.update(fmt.providers(frame))
        if kind != fmt.DATA:
            return
        prov_id = int(frame["prov_id"])
        self.add(prov_id, offset, nbytes, ((name, self._decoded(prov_id, name, block))
                                           for name, block in zip(frame["block_names"], frame["blocks"])))

    def add(self, prov_id: int, offset: int, nbytes: int,
            blocks: Iterable[Tuple[str, Tuple[np.ndarray, tuple, tuple, tuple]]]) -> None:
        """Keep a data frame's ``(block name, (ticks, keys, types, columns))``."""
        number, found = len(self.entries), False
        for name, (ticks, keys, types, columns) in blocks:
            if not len(ticks):
                continue
            numeric = self.numeric.get((keys, types))
            if numeric is None:
                where = tuple(i for i, t in enumerate(types) if t in fmt.NUMBERS)
                numeric = self.numeric[(keys, types)] = (where, tuple(keys[i] for i in where))
            self.ticks.append(ticks)
            self.owners.append((self.groups.setdefault((prov_id, name, keys, types), len(self.groups)), number))
            if self.aggregator is not None and numeric[0]:
                self.aggregator.add_block(prov_id, numeric[1], ticks, [columns[i] for i in numeric[0]])
            found = True
        if found:
            self.entries.append((prov_id, offset, nbytes))

    def _decoded(self, prov_id: int, name: str, block: core.G3TimesampleMap) -> Tuple[np.ndarray, tuple, tuple, tuple]:
        """``(ticks, keys, types, columns)`` of a block spt3g decoded (a numeric column, or None)."""
        keys, types = self._layout(prov_id, name, block)
        return fmt.ticks(block), keys, types, tuple(np.asarray(block[k], dtype=np.float64) if t in fmt.NUMBERS
                                                     else None for k, t in zip(keys, types))

    def _layout(self, prov_id: int, name: str, block: core.G3TimesampleMap) -> Tuple[tuple, tuple]:
        """The block's keys and types (a map's keys are sorted: the same set is the same tuple)."""
        known = self.layouts.get((prov_id, name))
        if known is None or len(block) != len(known[0]) or not all(k in block for k in known[0]):
            known = self.layouts[(prov_id, name)] = fmt.layout(block)
        return known

    def frames_and_fields(self) -> Tuple[List[FrameEntry], Dict[Tuple[int, str], FieldEntry]]:
        """Each data frame's time range, and each field's block, type and time range (every
        block's first and last tick in one reduction, whatever the number of blocks and layouts)."""
        if not self.ticks:
            return [], {}
        starts = np.zeros(len(self.ticks), dtype=np.int64)
        np.cumsum([len(t) for t in self.ticks[:-1]], out=starts[1:])
        t = np.concatenate(self.ticks)
        first, last = np.minimum.reduceat(t, starts), np.maximum.reduceat(t, starts)
        group, frame = np.array(self.owners, dtype=np.int64).T
        of_frame = np.flatnonzero(np.diff(frame, prepend=-1))  # a frame's blocks follow one another
        frames = [FrameEntry(prov_id, offset, nbytes, a / fmt.TICKS, b / fmt.TICKS)
                  for (prov_id, offset, nbytes), a, b in zip(self.entries,
                                                             np.minimum.reduceat(first, of_frame).tolist(),
                                                             np.maximum.reduceat(last, of_frame).tolist())]
        group_lo, group_hi = np.full(len(self.groups), first.max()), np.full(len(self.groups), last.min())
        np.minimum.at(group_lo, group, first)
        np.maximum.at(group_hi, group, last)
        lows, highs = group_lo.tolist(), group_hi.tolist()
        fields: Dict[Tuple[int, str], FieldEntry] = {}
        for ((prov_id, name, keys, types), number) in self.groups.items():
            start, end = lows[number] / fmt.TICKS, highs[number] / fmt.TICKS
            for key, type_ in zip(keys, types):
                entry = fields.get((prov_id, key))
                if entry is None:
                    wamp_type, influx_type = fmt.KINDS[type_]
                    fields[(prov_id, key)] = FieldEntry(name, wamp_type, start, end, influx_type)
                else:
                    entry.start, entry.end = min(entry.start, start), max(entry.end, end)
        return frames, fields
