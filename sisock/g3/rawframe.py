"""A housekeeping data frame read straight from its bytes, for the scanner and the reader.

spt3g decodes a block's sample times one ``G3Time`` object at a time (about
24 ns a sample, against 4 ns a double) and copies every entry of a frame it
loads: most of a first scan. The bytes are simple (cereal's portable binary
archives, as spt3g 1.0 writes them): a block's times are one run of int64 and
each numeric column one run of doubles or integers, so here they become numpy
views of the file's bytes, with no copy.

Only the layout spt3g 1.0 writes is read, checked byte for byte (class names,
versions, pointer ids, every length) after the frame's CRC; anything else (or
a CRC that does not match) gives None or :class:`Unknown`, and :func:`frame_at`
decodes the frame with spt3g, so an unusual or damaged frame reads as it always did.
"""
from __future__ import annotations

import struct
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import crc32c
import numpy as np
from spt3g import core

from sisock.g3 import format as fmt
from sisock.g3 import framing

#: What frames are read from: a file's bytes, or the reused buffer of a scan (sisock.g3.framing).
Bytes = Union[bytes, bytearray]

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_ID_LENGTH = struct.Struct("<IQ")  # a polymorphic id seen for the first time, then its name's length
_NEW = 0x80000000  # cereal's flag on an id (class or pointer) seen for the first time
#: The start of an archive of one object: endianness (little), then class id 1, new.
_VALUE_START = b"\x01" + _U32.pack(_NEW | 1)
#: Classes of the map values whose content the scanner does not need, and their field types.
_UNREAD = {b"G3VectorString": "string", b"G3VectorBool": "bool"}
_INTS: Dict[int, np.dtype] = {8: np.dtype("<i1"), 16: np.dtype("<i2"), 32: np.dtype("<i4"), 64: np.dtype("<i8")}
_TICKS, _DOUBLES = np.dtype("<i8"), np.dtype("<f8")
_HOUSEKEEPING = ord("H")  # G3FrameType.Housekeeping
_ALL_ONES = 0xFFFFFFFF


class Unknown(Exception):
    """The bytes are not the layout read here: decode them with spt3g instead."""


class RawBlock(NamedTuple):
    """One ``G3TimesampleMap``: its times in G3Time ticks, its keys (sorted, as the map keeps
    them), their field types and the numeric columns (``None`` for a text or bool column)."""

    ticks: np.ndarray
    keys: Tuple[str, ...]
    types: Tuple[str, ...]
    columns: Tuple[Optional[np.ndarray], ...]


class RawFrame(NamedTuple):
    """A data frame: its provider, its block names and its blocks."""

    prov_id: int
    names: List[str]
    blocks: List[RawBlock]


def frame_at(source: framing.LoadedBytes, offset: int) -> Tuple[Union[RawFrame, core.G3Frame], int]:
    """The frame at ``offset`` and its length in bytes: a data frame of the layout read here as a
    :class:`RawFrame` (numpy views of ``source``'s buffer), any other frame decoded by spt3g (a
    G3Frame); Truncated or Damaged (:mod:`sisock.g3.framing`) when it cannot be read."""
    spans: List[Tuple[int, int, int]] = []
    length = framing.frame_length(source, offset, spans)
    piece, at = source.piece(offset, offset + length)
    raw = read_data_frame(piece, at, length, spans)
    if raw is not None:
        return raw, length
    return framing.decode(bytes(memoryview(piece)[at:at + length])), length


def _prefix(name: bytes, version: int) -> bytes:
    """The bytes an archive of one object of class ``name`` starts with, up to its content:
    endianness, new class id 1 and its name, new pointer 1, its version and G3FrameObject's (1)."""
    return (b"\x01" + _ID_LENGTH.pack(_NEW | 1, len(name)) + name + _U32.pack(_NEW | 1) + _U32.pack(version)
            + _U32.pack(1))


_G3INT = _prefix(b"G3Int", 1)
_NAMES = _prefix(b"G3VectorString", 1)


def read_data_frame(data: Bytes, start: int, length: int, spans: Sequence[Tuple[int, int, int]]) -> Optional[RawFrame]:
    """The data frame in ``data[start:start + length]`` (its entries where ``spans`` say, from
    :func:`sisock.g3.framing.frame_length`), or None for another kind of frame, a CRC that does not
    match, or a layout read only by spt3g."""
    if _U32.unpack_from(data, start + 1)[0] != 1 or _U32.unpack_from(data, start + 9)[0] != _HOUSEKEEPING:
        return None  # another frame version, or not housekeeping
    crc, entries = 0, {}
    view = memoryview(data)
    for name_at, blob_at, blob_end in spans:
        name = bytes(view[start + name_at:start + blob_at - 8])
        crc = crc32c.crc32c(view[start + blob_at:start + blob_end],
                            crc32c.crc32c(name, crc ^ _ALL_ONES)) ^ _ALL_ONES  # spt3g's CRC is not inverted
        entries[name] = (start + blob_at, start + blob_end)
    if crc != _U32.unpack_from(data, start + length - 4)[0]:
        return None
    try:
        if _int(data, entries.get(b"hkagg_type")) != fmt.DATA:
            return None
        prov_id = _int(data, entries.get(b"prov_id"))
        names = _strings(data, entries.get(b"block_names"))
        blocks = read_blocks(data, *entries[b"blocks"])
    except (Unknown, KeyError, UnicodeDecodeError):
        return None
    return RawFrame(prov_id, names, blocks)


def _int(data: Bytes, where: Optional[Tuple[int, int]]) -> int:
    """The value of a ``G3Int`` entry."""
    if where is None or where[1] - where[0] != len(_G3INT) + 8 or not data.startswith(_G3INT, where[0]):
        raise Unknown("not a G3Int")
    return _I64.unpack_from(data, where[0] + len(_G3INT))[0]


def _strings(data: Bytes, where: Optional[Tuple[int, int]]) -> List[str]:
    """The values of a ``G3VectorString`` entry."""
    if where is None or not data.startswith(_NAMES, where[0]) or where[1] - where[0] < len(_NAMES) + 8:
        raise Unknown("not a G3VectorString")
    at, end = where[0] + len(_NAMES), where[1]
    (n,) = _U64.unpack_from(data, at)
    at += 8
    out = []
    for _ in range(n):
        if at + 8 > end:
            raise Unknown("names cut short")
        stop = at + 8 + _U64.unpack_from(data, at)[0]
        if stop > end:
            raise Unknown("a name runs past its vector")
        out.append(data[at + 8:stop].decode())
        at = stop
    if at != end:
        raise Unknown("bytes after the names")
    return out


#: How the numeric map values start (G3VectorInt of version 2 goes on with its bits per integer).
_DOUBLE = _prefix(b"G3VectorDouble", 1)
_INT, _INT_V1 = _prefix(b"G3VectorInt", 2), _prefix(b"G3VectorInt", 1)
_NAME_AT = 1 + _ID_LENGTH.size  # where a map value's class name starts
_BLOCKS = b"\x01" + _ID_LENGTH.pack(_NEW | 1, 19) + b"G3VectorFrameObject"
_MAP = _U64.pack(15) + b"G3TimesampleMap"


def read_blocks(data: Bytes, start: int, end: int) -> List[RawBlock]:
    """The blocks of a data frame's ``blocks`` entry, the bytes ``data[start:end]``; every length
    is checked against ``end`` before it is used, and any surprise raises :class:`Unknown`."""
    u32, u64 = _U32.unpack_from, _U64.unpack_from
    if end > len(data) or not data.startswith(_BLOCKS, start) or end - start < len(_BLOCKS) + 20:
        raise Unknown("not a vector of frame objects")
    at = start + len(_BLOCKS)
    pointer, versions, count = struct.unpack_from("<IQQ", data, at)
    if not pointer & _NEW or versions != 1 | 1 << 32:  # G3VectorFrameObject's and G3FrameObject's
        raise Unknown("a shared vector of blocks, or another version")
    at += 20
    map_id, times_seen, time_seen = 0, False, False
    blocks: List[RawBlock] = []
    for _ in range(count):
        if at + 8 > end:
            raise Unknown("blocks cut short")
        (class_id,) = u32(data, at)
        at += 4
        if class_id & _NEW and not map_id:
            if not data.startswith(_MAP, at) or at + len(_MAP) + 16 > end:
                raise Unknown("a block that is not a G3TimesampleMap")
            at += len(_MAP)
            pointer, map_versions = u32(data, at)[0], u64(data, at + 4)[0]
            if not pointer & _NEW or map_versions != 1 << 32:  # G3TimesampleMap's 0, G3MapFrameObject's 1
                raise Unknown("a shared block, or another version")
            map_id, at = class_id & ~_NEW, at + 12
        elif class_id != map_id or not u32(data, at)[0] & _NEW:
            raise Unknown(f"a block of class id {class_id}, or one shared")
        else:
            at += 4
        if at + 4 > end:
            raise Unknown("a block cut short")
        (n_keys,) = u32(data, at)
        at += 4
        keys: List[str] = []
        types: List[str] = []
        columns: List[Optional[np.ndarray]] = []
        for _ in range(n_keys):
            if at + 8 > end:
                raise Unknown("a key cut short")
            key_end = at + 8 + u64(data, at)[0]
            if key_end + 8 > end:
                raise Unknown("a key runs past its block")
            keys.append(data[at + 8:key_end].decode())
            value_end = key_end + 8 + u64(data, key_end)[0]
            if value_end > end:
                raise Unknown("a value runs past its block")
            type_, column = _value(data, key_end + 8, value_end)
            types.append(type_)
            columns.append(column)
            at = value_end
        if not times_seen:  # G3VectorTime's version, the first time
            if at + 4 > end or u32(data, at)[0] != 1:
                raise Unknown("another version of G3VectorTime")
            at, times_seen = at + 4, True
        if at + 8 > end:
            raise Unknown("times cut short")
        n = u64(data, at)[0]
        at += 8
        if n and not time_seen:  # G3Time's version, before the first time
            if at + 4 > end or u32(data, at)[0] != 1:
                raise Unknown("another version of G3Time")
            at, time_seen = at + 4, True
        if n > (end - at) // 8:
            raise Unknown("times run past their block")
        ticks = np.frombuffer(data, _TICKS, n, at)
        at += 8 * n
        if any(c is not None and len(c) != n for c in columns):
            raise Unknown("a column whose length is not its block's")
        blocks.append(RawBlock(ticks, tuple(keys), tuple(types), tuple(columns)))
    if at != end:
        raise Unknown(f"{end - at} bytes after the blocks")
    return blocks


def _value(data: Bytes, start: int, end: int) -> Tuple[str, Optional[np.ndarray]]:
    """``(kind, numeric column or None)`` of one map value (:data:`sisock.g3.format.KINDS`): its own archive in
    ``data[start:end]``."""
    kind = "integer"
    if data.startswith(_DOUBLE, start):
        at, dtype, kind = start + len(_DOUBLE), _DOUBLES, "number"
    elif data.startswith(_INT, start) and start + len(_INT) + 4 <= end:
        bits = _U32.unpack_from(data, start + len(_INT))[0]
        if bits not in _INTS:
            raise Unknown(f"G3VectorInt of {bits}-bit integers")
        at, dtype = start + len(_INT) + 4, _INTS[bits]
    elif data.startswith(_INT_V1, start):
        at, dtype = start + len(_INT_V1), _INTS[32]
    else:
        name_end = start + _NAME_AT + (_U64.unpack_from(data, start + 5)[0] if start + _NAME_AT <= end else 0)
        type_ = _UNREAD.get(bytes(data[start + _NAME_AT:name_end])) if data.startswith(_VALUE_START, start) else None
        if type_ is None or name_end > end:  # a number of another version, or another class
            raise Unknown(f"a column of class {data[start + _NAME_AT:min(name_end, start + 64)]!r}")
        return type_, None
    if at + 8 > end:
        raise Unknown("a column cut short")
    n = _U64.unpack_from(data, at)[0]
    if at + 8 + n * dtype.itemsize != end:
        raise Unknown("a column's length is not its value's")
    return kind, np.frombuffer(data, dtype, n, at + 8)
