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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from spt3g import core

from sisock.g3 import format as fmt
from sisock.g3 import framing
from sisock.g3.summaries import FrameAggregator, Packed

#: Bytes read at a time while reading a file frame after frame.
READ_AHEAD = 8 << 20
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
    """A field of one provider in one file: its block, type and time range."""

    block: str
    type: str
    start: float
    end: float


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
        source = framing.FileBytes(handle, size, READ_AHEAD)
        position = start_offset
        while position < size:
            try:
                frame, length = framing.frame_at(source, position)
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
            blocks.take(scan, frame, position, length)
            position += length
            scan.scanned_to = position
        scan.fingerprint = fingerprint(handle, scan.scanned_to)
        scan.frames, scan.fields = blocks.frames_and_fields()
        scan.summaries = blocks.aggregator.result() if blocks.aggregator is not None else {}
    if damage:
        more = f" (and {len(damage) - 1} more damaged places)" if len(damage) > 1 else ""
        scan.status, scan.error = "bad", damage[0] + more
    return scan


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
    over the whole read, not two numpy calls per block, and a block's layout is the one its
    provider's block of that name had last unless its keys changed (spt3g makes a list of
    keys, or a name of a vector of names, at several microseconds a key).
    """

    def __init__(self, aggregator: Optional[FrameAggregator]) -> None:
        self.aggregator = aggregator
        #: (prov_id, block name) -> the keys, types and numeric keys its block had last
        self.layouts: Dict[Tuple[int, str], Tuple[tuple, tuple, tuple]] = {}
        #: (prov_id, block name, keys, types) -> its number
        self.groups: Dict[tuple, int] = {}
        #: each block's ticks, and the numbers of its group and of its frame
        self.ticks: List[np.ndarray] = []
        self.owners: List[Tuple[int, int]] = []
        #: (prov_id, byte offset, bytes) of each data frame that has samples
        self.entries: List[Tuple[int, int, int]] = []

    def take(self, scan: FileScan, frame: core.G3Frame, offset: int, nbytes: int) -> None:
        """Add one frame: a status frame names providers, a data frame's blocks are kept."""
        kind = fmt.kind(frame)
        if kind == fmt.STATUS:
            scan.providers.update(fmt.providers(frame))
        if kind != fmt.DATA:
            return
        prov_id = int(frame["prov_id"])
        names, blocks = frame["block_names"], frame["blocks"]
        number, found = len(self.entries), False
        for i in range(min(len(names), len(blocks))):  # indexing: spt3g's iterators cost more
            block = blocks[i]
            ticks = fmt.ticks(block)
            if not len(ticks):
                continue
            name = names[i]
            keys, types, numeric = self._layout(prov_id, name, block)
            self.ticks.append(ticks)
            self.owners.append((self.groups.setdefault((prov_id, name, keys, types), len(self.groups)), number))
            if self.aggregator is not None:
                self.aggregator.add_block(prov_id, block, ticks, numeric)
            found = True
        if found:
            self.entries.append((prov_id, offset, nbytes))

    def _layout(self, prov_id: int, name: str, block: core.G3TimesampleMap) -> Tuple[tuple, tuple, tuple]:
        """The block's keys, types and numeric keys (a map's keys are sorted: the same set is the same tuple)."""
        known = self.layouts.get((prov_id, name))
        if known is None or len(block) != len(known[0]) or not all(k in block for k in known[0]):
            keys, types = fmt.layout(block)
            known = self.layouts[(prov_id, name)] = (keys, types, tuple(k for k, t in zip(keys, types)
                                                                        if t == "number"))
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
                  for (prov_id, offset, nbytes), a, b in zip(self.entries, np.minimum.reduceat(first, of_frame).tolist(),
                                                             np.maximum.reduceat(last, of_frame).tolist())]
        group_lo, group_hi = np.full(len(self.groups), first.max()), np.full(len(self.groups), last.min())
        np.minimum.at(group_lo, group, first)
        np.maximum.at(group_hi, group, last)
        group_lo, group_hi = group_lo.tolist(), group_hi.tolist()
        fields: Dict[Tuple[int, str], FieldEntry] = {}
        for ((prov_id, name, keys, types), number) in self.groups.items():
            start, end = group_lo[number] / fmt.TICKS, group_hi[number] / fmt.TICKS
            for key, type_ in zip(keys, types):
                entry = fields.get((prov_id, key))
                if entry is None:
                    fields[(prov_id, key)] = FieldEntry(name, type_, start, end)
                else:
                    entry.start, entry.end = min(entry.start, start), max(entry.end, end)
        return frames, fields
