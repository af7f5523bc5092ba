"""Reading one .g3 file for the index: where its data frames are, its providers, fields and summaries.

The scanner's worker processes (:mod:`sisock.g3.parallel`) import this module
alone to read files, so it imports only spt3g, numpy and the modules the read
needs: a worker that imported the scanner (and with it Twisted and autobahn)
took about a second to start, a third of a first scan of a 1 GB archive.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spt3g import core

from sisock.g3 import format as fmt
from sisock.g3 import framing
from sisock.g3.summaries import Buckets, FrameAggregator

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
    #: aggregates of each numeric field of the frames read, by (prov_id, field key)
    summaries: Dict[Tuple[int, str], Buckets] = field(default_factory=dict)


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
    aggregator = FrameAggregator() if summarise else None
    ranges: Dict[tuple, List[int]] = {}
    damage: List[str] = []
    with open(path, "rb") as handle:
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
            _take(scan, aggregator, ranges, frame, position, length)
            position += length
            scan.scanned_to = position
        scan.fingerprint = fingerprint(handle, scan.scanned_to)
    scan.fields = _fields(ranges)
    scan.summaries = aggregator.result() if aggregator is not None else {}
    if damage:
        more = f" (and {len(damage) - 1} more damaged places)" if len(damage) > 1 else ""
        scan.status, scan.error = "bad", damage[0] + more
    return scan


def _take(scan: FileScan, aggregator: Optional[FrameAggregator], ranges: Dict[tuple, List[int]], frame: core.G3Frame,
          offset: int, nbytes: int) -> None:
    """Add one frame to a scan: a status frame names providers, a data frame is indexed and
    summarised, and each block's time range (in ticks) is widened in ``ranges``."""
    kind = fmt.kind(frame)
    if kind == fmt.STATUS:
        scan.providers.update(fmt.providers(frame))
    if kind != fmt.DATA:
        return
    prov_id = int(frame["prov_id"])
    t_start, t_end = None, None
    for name, block in fmt.blocks(frame):
        ticks = fmt.ticks(block)
        if not len(ticks):
            continue
        lo, hi = int(ticks.min()), int(ticks.max())
        t_start = lo if t_start is None else min(t_start, lo)
        t_end = hi if t_end is None else max(t_end, hi)
        keys, types = fmt.layout(block)
        if aggregator is not None:
            aggregator.add_block(prov_id, block, ticks, tuple(k for k, t in zip(keys, types) if t == "number"))
        span = ranges.get((prov_id, name, keys, types))
        if span is None:
            ranges[(prov_id, name, keys, types)] = [lo, hi]
        else:
            span[0], span[1] = min(span[0], lo), max(span[1], hi)
    if t_start is not None:
        scan.frames.append(FrameEntry(prov_id, offset, nbytes, t_start / fmt.TICKS, t_end / fmt.TICKS))


def _fields(ranges: Dict[tuple, List[int]]) -> Dict[Tuple[int, str], FieldEntry]:
    """Each field's block, type and time range, from the blocks' ranges."""
    fields: Dict[Tuple[int, str], FieldEntry] = {}
    for (prov_id, name, keys, types), (lo, hi) in ranges.items():
        for key, type_ in zip(keys, types):
            entry = fields.get((prov_id, key))
            if entry is None:
                fields[(prov_id, key)] = FieldEntry(name, type_, lo / fmt.TICKS, hi / fmt.TICKS)
            else:
                entry.start, entry.end = min(entry.start, lo / fmt.TICKS), max(entry.end, hi / fmt.TICKS)
    return fields
