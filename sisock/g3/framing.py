"""Frames of a .g3 file, read with every declared length checked against the bytes that exist.

spt3g trusts the lengths a frame declares: one corrupted length field makes it
allocate gigabytes. Here a frame's layout (``serialization`` of spt3g 1.0:
an endianness byte, the frame version, the number of entries and the frame
type, then per entry a name and a blob, each preceded by its 64-bit length,
then a CRC) is walked first, reading no further than the file's end; only a
frame that fits is handed to spt3g, which then checks its CRC. So memory stays
bounded by the file's own size, whatever the bytes say.

After a damaged frame, :func:`next_frame` finds the next frame that decodes,
so one bad frame costs only itself.
"""
from __future__ import annotations

import io
import re
import struct
from typing import List, Optional, Tuple, Union

from spt3g import core

#: spt3g logs its own errors (a CRC mismatch, ...) on standard error before raising;
#: sisock reports them itself, one line per event, so spt3g gets a logger that writes nothing.
core.G3Logger.global_logger = core.G3MultiLogger(core.G3LoggerVector())

_HEADER = struct.Struct("<BIII")  # endianness (1 = little), version, entries, frame type
_LENGTH = struct.Struct("<Q")
_CRC_BYTES = 4
#: No frame entry name is longer (they are keys such as "blocks").
MAX_NAME = 4096
#: Bytes read at a time when looking for the next frame.
SEARCH_CHUNK = 1 << 20
#: What the start of a frame looks like: little-endian, version 1, any count, a known type code.
_START = re.compile(rb"\x01\x01\x00\x00\x00.{4}[TOHSMIPZCWGELRN]\x00\x00\x00", re.DOTALL)


class Truncated(Exception):
    """The frame at this offset runs past the end of the file: still being written, or its
    length is corrupt (the caller decides which)."""


class Damaged(Exception):
    """The bytes at this offset are not a frame, or spt3g could not decode it (its CRC, ...)."""


class FileBytes:
    """The bytes of one open file, read in pieces of at least ``ahead`` bytes and never past
    ``file_size``: the reader seeking to one frame asks for small ones. Holds one piece at a
    time, so memory stays bounded."""

    def __init__(self, handle: io.BufferedIOBase, file_size: int, ahead: int = 1 << 16) -> None:
        self.handle, self.size, self.ahead = handle, file_size, ahead
        self.base, self.length = 0, 0
        self.buffer = bytearray()  # reused: a new piece costs no fresh allocation (nor page faults)
        self.data: Union[memoryview, bytearray] = memoryview(self.buffer)

    def need(self, start: int, end: int, frame: int) -> None:
        """Have bytes ``[start, end)`` at hand (``frame``: where the frame being walked starts)."""
        if end > self.size:
            raise Truncated(f"needs {end - frame} bytes, {self.size - frame} remain in the file")
        if start >= self.base and end <= self.base + self.length:
            return
        want = min(max(end - start, self.ahead), self.size - start)
        if want > len(self.buffer):
            if isinstance(self.data, memoryview):  # always here: only LoadedBytes holds a bytearray
                self.data.release()
            self.buffer = bytearray(want)
            self.data = memoryview(self.buffer)
        self.handle.seek(start)
        got = self.handle.readinto(self.data[:want])
        if got < end - start:  # the file shrank under us
            raise Truncated(f"needs {end - frame} bytes, the file ended after {start + got - frame}")
        self.base, self.length = start, got

    def unpack(self, fmt: struct.Struct, at: int, frame: int) -> tuple:
        i = at - self.base
        if i < 0 or i + fmt.size > self.length:  # not in the piece at hand (the usual case is)
            self.need(at, at + fmt.size, frame)
            i = at - self.base
        return fmt.unpack_from(self.data, i)

    def take(self, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` (a copy: spt3g decodes from its own bytes)."""
        self.need(start, end, start)
        return bytes(self.data[start - self.base:end - self.base])


class LoadedBytes(FileBytes):
    """A file's bytes from ``start`` to ``file_size``, read at once into ``buffer`` (which holds them
    and which the caller may reuse from file to file): a scan sees its frames in place, with no copy."""

    def __init__(self, handle: io.BufferedIOBase, file_size: int, start: int, buffer: bytearray) -> None:
        super().__init__(handle, file_size)
        handle.seek(start)
        with memoryview(buffer) as view:
            got = handle.readinto(view[:max(0, file_size - start)])
        self.size, self.buffer, self.base, self.length = start + got, buffer, start, got  # a shrunk file ends sooner
        self.data = buffer

    def need(self, start: int, end: int, frame: int) -> None:
        if end > self.size:
            raise Truncated(f"needs {end - frame} bytes, {self.size - frame} remain in the file")
        if start < self.base:
            raise ValueError(f"byte {start} is before the bytes read (from {self.base})")

    def piece(self, start: int, end: int) -> Tuple[bytearray, int]:
        """The bytes holding ``[start, end)`` and where that starts in them."""
        self.need(start, end, start)
        return self.buffer, start - self.base


def frame_length(source: FileBytes, offset: int, spans: Optional[List[Tuple[int, int, int]]] = None) -> int:
    """The length of the frame at ``offset``, its layout checked; Truncated or Damaged otherwise.
    ``spans`` gets where each entry's name starts, and its blob, relative to ``offset``
    (what :func:`sisock.g3.rawframe.read_data_frame` reads)."""
    endian, _version, entries, _type = source.unpack(_HEADER, offset, offset)
    if endian != 1:
        raise Damaged(f"not the start of a frame (endianness byte {endian})")
    at = offset + _HEADER.size
    if entries * 2 * _LENGTH.size > source.size - at:
        raise Truncated(f"declares {entries} entries, more than the {source.size - at} bytes left hold")
    for _ in range(entries):
        (name_length,) = source.unpack(_LENGTH, at, offset)
        if name_length > MAX_NAME:
            raise Damaged(f"an entry name of {name_length} bytes")
        name_at = at + _LENGTH.size
        at = name_at + name_length
        (blob_length,) = source.unpack(_LENGTH, at, offset)
        at += _LENGTH.size + blob_length
        if at > source.size:
            raise Truncated(f"an entry of {blob_length} bytes runs past the end of the file")
        if spans is not None:
            spans.append((name_at - offset, at - blob_length - offset, at - offset))
    at += _CRC_BYTES
    if at > source.size:
        raise Truncated(f"needs {at - offset} bytes, {source.size - offset} remain in the file")
    return at - offset


def decode(data: bytes) -> core.G3Frame:
    """A G3Frame from its serialised bytes (spt3g checks the CRC); Damaged if it does not decode."""
    frame = core.G3Frame.__new__(core.G3Frame)
    try:
        frame.__setstate__(({}, data))
    except Exception as exc:  # spt3g raises RuntimeError, ValueError, ... on bad bytes
        raise Damaged(f"{type(exc).__name__}: {exc}") from None
    return frame


def frame_at(source: FileBytes, offset: int) -> Tuple[core.G3Frame, int]:
    """The decoded frame at ``offset`` and its length in bytes; Truncated or Damaged otherwise."""
    length = frame_length(source, offset)
    return decode(source.take(offset, offset + length)), length


def next_frame(source: FileBytes, offset: int) -> Optional[int]:
    """The offset of the first frame at or after ``offset`` that decodes, or None."""
    handle, file_size = source.handle, source.size
    position = offset
    while position < file_size:
        handle.seek(position)
        chunk = handle.read(min(SEARCH_CHUNK + _HEADER.size, file_size - position))
        if not chunk:
            return None
        for match in _START.finditer(chunk):
            candidate = position + match.start()
            try:
                frame_at(FileBytes(handle, file_size), candidate)
            except (Truncated, Damaged):
                continue
            return candidate
        position += max(len(chunk) - _HEADER.size, 1)
    return None
