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

import re
import struct
from typing import BinaryIO, Optional, Tuple

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


class _Window:
    """The bytes of one frame from ``offset`` on, read as the walk needs them, never past ``limit``."""

    def __init__(self, handle: BinaryIO, offset: int, limit: int) -> None:
        handle.seek(offset)
        self.handle = handle
        self.available = limit - offset
        self.data = bytearray()

    def need(self, end: int) -> None:
        if end > self.available:
            raise Truncated(f"needs {end} bytes, {self.available} remain in the file")
        while len(self.data) < end:
            want = min(max(end - len(self.data), 65536), self.available - len(self.data))
            chunk = self.handle.read(want)
            if not chunk:  # the file shrank under us
                raise Truncated(f"needs {end} bytes, the file ended after {len(self.data)}")
            self.data += chunk

    def unpack(self, fmt: struct.Struct, at: int) -> tuple:
        self.need(at + fmt.size)
        return fmt.unpack_from(self.data, at)


def frame_length(handle: BinaryIO, offset: int, file_size: int) -> Tuple[int, bytes]:
    """``(length, bytes)`` of the frame at ``offset``, its layout checked; Truncated or Damaged otherwise."""
    window = _Window(handle, offset, file_size)
    endian, _version, entries, _type = window.unpack(_HEADER, 0)
    if endian != 1:
        raise Damaged(f"not the start of a frame (endianness byte {endian})")
    at = _HEADER.size
    if entries * 2 * _LENGTH.size > window.available - at:
        raise Truncated(f"declares {entries} entries, more than the {window.available - at} bytes left hold")
    for _ in range(entries):
        (name_length,) = window.unpack(_LENGTH, at)
        if name_length > MAX_NAME:
            raise Damaged(f"an entry name of {name_length} bytes")
        at += _LENGTH.size + name_length
        (blob_length,) = window.unpack(_LENGTH, at)
        at += _LENGTH.size + blob_length
        if at > window.available:
            raise Truncated(f"an entry of {blob_length} bytes runs past the end of the file")
    at += _CRC_BYTES
    window.need(at)
    return at, bytes(window.data[:at])


def decode(data: bytes) -> core.G3Frame:
    """A G3Frame from its serialised bytes (spt3g checks the CRC); Damaged if it does not decode."""
    frame = core.G3Frame.__new__(core.G3Frame)
    try:
        frame.__setstate__(({}, data))
    except Exception as exc:  # spt3g raises RuntimeError, ValueError, ... on bad bytes
        raise Damaged(f"{type(exc).__name__}: {exc}") from None
    return frame


def frame_at(handle: BinaryIO, offset: int, file_size: int) -> Tuple[core.G3Frame, int]:
    """The decoded frame at ``offset`` and its length in bytes; Truncated or Damaged otherwise."""
    length, data = frame_length(handle, offset, file_size)
    return decode(data), length


def next_frame(handle: BinaryIO, offset: int, file_size: int) -> Optional[int]:
    """The offset of the first frame at or after ``offset`` that decodes, or None."""
    position = offset
    while position < file_size:
        handle.seek(position)
        chunk = handle.read(min(SEARCH_CHUNK + _HEADER.size, file_size - position))
        if not chunk:
            return None
        for match in _START.finditer(chunk):
            candidate = position + match.start()
            try:
                frame_at(handle, candidate, file_size)
            except (Truncated, Damaged):
                continue
            return candidate
        position += max(len(chunk) - _HEADER.size, 1)
    return None
