"""The scanner's own reading of data frames (sisock/g3/rawframe.py) gives what spt3g decodes,
and hands anything else back to spt3g: a scan is the same whichever of the two read a frame."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spt3g import core

from sisock.g3 import format as fmt
from sisock.g3 import framing, rawframe
from sisock.g3 import filescan
from sisock.g3.filescan import read_file
from tests.g3_support import small_archive

KINDS = ("double", "int", "string", "bool")


def vector(kind: str, values: list):
    if kind == "double":
        return core.G3VectorDouble(np.array(values, dtype=np.float64))
    if kind == "int":
        return core.G3VectorInt([int(v) for v in values])
    if kind == "string":
        return core.G3VectorString([f"s{v}" for v in values])
    return core.G3VectorBool([bool(int(v) % 2) for v in values])


def data_frame(prov_id: int, blocks: list) -> core.G3Frame:
    """A housekeeping data frame of ``blocks``: ``(name, ticks, {key: vector})``."""
    frame = core.G3Frame(core.G3FrameType.Housekeeping)
    frame["hkagg_type"] = core.G3Int(fmt.DATA)
    frame["hkagg_version"] = core.G3Int(fmt.HKAGG_VERSION)
    frame["session_id"] = core.G3Int(1)
    frame["prov_id"] = core.G3Int(prov_id)
    frame["timestamp"] = core.G3Double(1.7e9)
    frame["block_names"] = core.G3VectorString([name for name, _, _ in blocks])
    vectors = core.G3VectorFrameObject()
    for _, ticks, columns in blocks:
        block = core.G3TimesampleMap()
        block.times = core.G3VectorTime([core.G3Time(int(t)) for t in ticks])
        for key, value in columns.items():
            block[key] = value
        vectors.append(block)
    frame["blocks"] = vectors
    return frame


def serialised(frame: core.G3Frame) -> bytes:
    return bytes(frame.__getstate__()[1])


def read(data: bytes):
    """:func:`rawframe.read_data_frame` of a frame's bytes, with its entries found as the scanner finds them."""
    source = framing.LoadedBytes(_Handle(data), len(data), 0, bytearray(len(data)))
    spans = []
    length = framing.frame_length(source, 0, spans)
    assert length == len(data)
    piece, at = source.piece(0, length)
    return rawframe.read_data_frame(piece, at, length, spans)


class _Handle:
    """Just enough of a file for LoadedBytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def seek(self, _offset: int) -> None:
        pass

    def readinto(self, view) -> int:
        view[:len(self.data)] = self.data
        return len(self.data)


def block_strategy():
    """A block: its name, sorted random ticks and up to four columns of random kinds and magnitudes."""
    def build(args):
        n, columns, name = args
        return st.tuples(
            st.just(name),
            st.lists(st.integers(0, 2 ** 62), min_size=n, max_size=n),
            st.fixed_dictionaries({key: st.tuples(st.sampled_from(KINDS),
                                                  st.lists(st.integers(-2 ** 63, 2 ** 63 - 1) | st.integers(-100, 100),
                                                           min_size=n, max_size=n))
                                   for key in columns}))
    return st.tuples(st.integers(0, 6), st.sets(st.text("abcxyz_0", min_size=1, max_size=6), max_size=4),
                     st.text("bB1", min_size=1, max_size=3)).flatmap(build)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prov_id=st.integers(0, 10 ** 6), blocks=st.lists(block_strategy(), max_size=4))
def test_a_data_frame_reads_as_spt3g_decodes_it(prov_id, blocks):
    frame = data_frame(prov_id, [(name, ticks, {k: vector(kind, values) for k, (kind, values) in columns.items()})
                                 for name, ticks, columns in blocks])
    data = serialised(frame)
    raw = read(data)
    assert raw is not None
    decoded = framing.decode(data)
    assert raw.prov_id == prov_id and raw.names == list(decoded["block_names"])
    assert len(raw.blocks) == len(decoded["blocks"])
    for mine, theirs in zip(raw.blocks, decoded["blocks"]):
        assert np.array_equal(mine.ticks, fmt.ticks(theirs))
        assert mine.keys == tuple(theirs.keys())
        assert mine.types == tuple(fmt.value_type(theirs[k]) for k in mine.keys)
        for key, column in zip(mine.keys, mine.columns):
            if fmt.value_type(theirs[key]) in fmt.NUMBERS:
                assert np.array_equal(np.asarray(column, dtype=np.float64), np.asarray(theirs[key], dtype=np.float64))
                assert np.array_equal(np.asarray(column), np.asarray(theirs[key]))  # integers stay exact
            else:
                assert column is None


def test_a_frame_with_a_wrong_crc_or_another_layout_is_left_to_spt3g():
    good = serialised(data_frame(3, [("b", [1, 2, 3], {"x": vector("double", [1, 2, 3])})]))
    assert read(good) is not None
    flipped = bytearray(good)
    flipped[-30] ^= 0x01  # a bit of a value: the CRC no longer matches
    assert read(bytes(flipped)) is None
    shared = data_frame(3, [("b", [1, 2, 3], {"x": vector("double", [1, 2, 3])})])
    block = shared["blocks"][0]
    del shared["blocks"]
    shared["blocks"] = core.G3VectorFrameObject([block, block])  # one block twice: a pointer to it
    del shared["block_names"]
    shared["block_names"] = core.G3VectorString(["b", "c"])
    data = serialised(shared)
    assert len(framing.decode(data)["blocks"]) == 2 and read(data) is None
    status = core.G3Frame(core.G3FrameType.Housekeeping)
    status["hkagg_type"] = core.G3Int(fmt.STATUS)
    assert read(serialised(status)) is None
    other = core.G3Frame(core.G3FrameType.Scan)
    other["prov_id"] = core.G3Int(3)
    assert read(serialised(other)) is None


def _summary(scan) -> tuple:
    return (scan.scanned_to, scan.status, scan.providers, [vars(f) for f in scan.frames],
            {k: vars(v) for k, v in scan.fields.items()}, scan.summaries)


def test_a_scan_is_the_same_whichever_way_its_frames_are_read(tmp_path, monkeypatch):
    """Every frame read here, every frame left to spt3g, or every other one: the same frames,
    fields (numbers, text, bools) and summaries."""
    paths = small_archive().write(tmp_path / "archive")
    mine = [read_file(p, finished=True) for p in paths]
    assert all(s.frames and s.status == "ok" for s in mine)
    real = rawframe.read_data_frame
    calls = {"n": 0}

    def every_other(*args):
        calls["n"] += 1
        return real(*args) if calls["n"] % 2 else None
    for replacement in (lambda *args: None, every_other):
        monkeypatch.setattr(rawframe, "read_data_frame", replacement)
        theirs = [read_file(p, finished=True) for p in paths]
        assert [_summary(s) for s in theirs] == [_summary(s) for s in mine]
    types = {f.type for s in mine for f in s.fields.values()}
    assert types == {"number", "string", "bool"}


def test_the_read_buffer_is_reused_only_when_nothing_views_it():
    """The memory files are read into is kept for the next read, never while an array still
    views it or another read holds it."""
    buffers = filescan._ReadBuffer()
    with buffers.lease(100) as first:
        first[:3] = b"abc"
    with buffers.lease(50) as again:
        assert again is first
        with buffers.lease(10) as other:  # a second read meanwhile (another thread's)
            assert other is not first and len(other) >= 10
        kept = np.frombuffer(again, np.uint8, 3)
    with buffers.lease(50) as third:
        assert third is not first  # `kept` still views the old one, which stays as it was
        third[:3] = b"xyz"
    assert bytes(kept) == b"abc"
    with buffers.lease(1000) as bigger:
        assert len(bigger) >= 1000
