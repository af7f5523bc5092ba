"""g3-reader: windows, names, decimation and the frame cache; and the data node over a real router."""
from __future__ import annotations

import os

import numpy as np
import pytest

from sisock import wamp
from sisock.g3 import reader as reader_module
from sisock.g3.reader import FrameCache, Reader
from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive, Block, Provider
from tests.g3_support import (END, PROVIDERS, archive_dir, assert_reads_back,
                              make_index, small_archive)
from tests.support import most_per_slot

LS1 = "observatory.LS240_1.feeds.temperatures"
SPIKE_AT, SPIKE = END - 1234.4, 1.0e6


@pytest.fixture
def scanned(g3_env):
    """A small archive on disk, scanned; returns (archive, index)."""
    archive = small_archive()
    archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    return archive, index


@pytest.mark.parametrize("window", [
    (END - 1700, END - 1300),   # inside the first file
    (END - 1500, END - 100),    # across two file boundaries, through the gap
    (END - 1210, END - 1190),   # a few samples across one boundary
    (END - 1680, END - 1560),   # on frame boundaries: samples at the start kept, at the end left out
])
def test_windows_read_back_exactly(scanned, window):
    archive, index = scanned
    assert_reads_back(index, archive, *window)


def test_window_in_a_gap_has_no_fields_and_no_data(scanned):
    archive, index = scanned
    reader = Reader(index, 16)
    assert reader.fields(END - 950, END - 750) == ({}, {})
    assert reader.data([f"{LS1}.ch0"], END - 950, END - 750) == {}
    assert reader.fields(END - 5000, END - 4000) == ({}, {})


def test_get_fields_groups_fields_sampled_together(scanned):
    _, index = scanned
    fields, timelines = Reader(index, 16).fields(END - 600, END)
    expected = {f"{p.description}.{f}" for p in PROVIDERS for b in p.blocks for f in b.fields}
    assert set(fields) == expected
    assert sorted(timelines[f"{LS1}.fast"]["field"]) == [f"{LS1}.ch0", f"{LS1}.ch1"]
    assert fields[f"{LS1}.ch1"]["timeline"] == f"{LS1}.fast"
    assert fields[f"{LS1}.state"]["type"] == "string"
    assert fields["observatory.weather.feeds.station.dome_open"]["type"] == "bool"
    assert fields[f"{LS1}.heater"]["type"] == "number"


def test_unknown_fields_are_left_out(scanned):
    _, index = scanned
    got = Reader(index, 16).data(["no.such.field", f"{LS1}.nope", f"{LS1}.heater"], END - 600, END)
    assert list(got) == [f"{LS1}.slow"]
    assert list(got[f"{LS1}.slow"][1]) == [f"{LS1}.heater"]


def test_short_names_read_the_same_samples(scanned):
    archive, index = scanned
    short = "observatory.LS240_1.ch1"
    got = Reader(index, 16).data([short, f"{LS1}.ch1"], END - 600, END)
    t, columns = got[f"{LS1}.fast"]
    expected_t, expected_v = archive.samples(LS1, "ch1", END - 600, END)
    np.testing.assert_array_equal(t, expected_t)
    np.testing.assert_array_equal(columns[short], expected_v)
    np.testing.assert_array_equal(columns[f"{LS1}.ch1"], expected_v)


def spiky_archive() -> Archive:
    provider = Provider(LS1, (Block("fast", ("ch0",), 5.0, spikes=((SPIKE_AT, SPIKE),)),))
    return Archive([provider], END - 1800, END, file_seconds=600)


def test_decimation_keeps_the_spike(g3_env):
    archive = spiky_archive()
    archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    reader = Reader(index, 16)
    t, columns = reader.data([f"{LS1}.ch0"], END - 1800, END, min_stride=60)[f"{LS1}.ch0"]
    assert len(t) <= 4 * (1800 / 60) and np.max(np.unique(np.floor(t / 60), return_counts=True)[1]) <= 4
    assert t[0] >= END - 1800 and t[-1] < END  # real sample times inside the window
    assert columns[f"{LS1}.ch0"].max() == SPIKE
    t, columns = reader.data([f"{LS1}.ch0"], END - 1800, END, max_points=50)[f"{LS1}.ch0"]
    assert len(t) <= 50 and columns[f"{LS1}.ch0"].max() == SPIKE


def test_long_ranges_are_reduced_as_they_are_read(g3_env, monkeypatch):
    """Memory stays bounded: a timeline is shrunk to the request's resolution chunk by chunk,
    and the answer equals the one decimated at the end."""
    archive = spiky_archive()
    archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    name = f"{LS1}.ch0"
    whole = Reader(index, 0).data([name], END - 1800, END, min_stride=30)[name]
    monkeypatch.setattr(reader_module, "COMPACT_AT", 500)  # compact after every ~two frames
    gathered = []
    real_reduced = reader_module._reduced
    monkeypatch.setattr(reader_module, "_reduced",
                        lambda piece, step: (gathered.append(piece.length), real_reduced(piece, step))[1])
    chunked = Reader(index, 0).data([name], END - 1800, END, min_stride=30)[name]
    assert gathered and max(gathered) < 500 + 700  # never more than a compaction's worth plus one frame
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1][name], whole[1][name])
    assert chunked[1][name].max() == SPIKE


def test_a_file_changed_since_it_was_cached_is_read_again(g3_env):
    plain = small_archive()
    paths = plain.write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    reader = Reader(index, 64)
    window = (END - 1800, END - 1200)
    before = reader.data([f"{LS1}.ch0"], *window)[f"{LS1}.fast"][1][f"{LS1}.ch0"]
    assert before.max() < SPIKE
    assert reader.cache.size > 0
    spiky = Archive([Provider(LS1, (Block("fast", ("ch0", "ch1"), 5.0, spikes=((SPIKE_AT, SPIKE),)),)
                              + PROVIDERS[0].blocks[1:])] + PROVIDERS[1:],
                    plain.start, plain.end, plain.file_seconds, plain.frame_seconds, plain.gaps)
    size = paths[0].stat().st_size
    spiky.write_file(paths[0], END - 1800, END - 1200)
    assert paths[0].stat().st_size == size  # same layout, same offsets: only the cache can be stale
    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = reader.data([f"{LS1}.ch0"], *window)[f"{LS1}.fast"][1][f"{LS1}.ch0"]
    assert after.max() == SPIKE


def test_frame_cache_is_bounded_and_checks_the_file_stamp():
    cache = FrameCache(capacity=1000)
    cache.put(("a", 0), (10, 1), 400, "frame a")
    cache.put(("b", 0), (10, 1), 400, "frame b")
    assert cache.get(("a", 0), (10, 1)) == "frame a"
    cache.put(("c", 0), (10, 1), 400, "frame c")  # over capacity: b is the least recently used
    assert cache.get(("b", 0), (10, 1)) is None
    assert cache.get(("a", 0), (10, 1)) == "frame a"
    assert cache.get(("a", 0), (11, 2)) is None  # the file changed
    assert cache.size == 800
    cache.put(("huge", 0), (1, 1), 5000, "too big")
    assert cache.get(("huge", 0), (1, 1)) is None


def test_g3_reader_data_node_over_the_router(g3_env, procs, client):
    archive = spiky_archive()
    archive.write(archive_dir(g3_env))
    procs.start("hub").wait_for("hub ready")
    node = procs.start("g3-reader", env=dict(g3_env, MAX_POINTS="200"))
    scan = procs.start("g3-file-scanner", "--once", env=g3_env)
    scan.wait_for("pass done")
    node.wait_for("added data node g3_reader")
    assert {"name": "g3_reader", "description": "Housekeeping archive (.g3 files)"} in client.call(wamp.HUB_LIST)
    fields, timelines = client.call(wamp.get_fields_uri("g3_reader"), END - 1800, END)
    assert list(fields) == [f"{LS1}.ch0"] and timelines[f"{LS1}.fast"]["field"] == [f"{LS1}.ch0"]
    answer = client.call(wamp.get_data_uri("g3_reader"), [f"{LS1}.ch0", "observatory.LS240_1.ch0", "nope"],
                         END - 1800, END)
    # decimated (MAX_POINTS), each name comes on a timeline of its own, with the same samples
    full, short = answer["timeline"][f"{LS1}.ch0"], answer["timeline"]["observatory.LS240_1.ch0"]
    assert full["fields"] == [f"{LS1}.ch0"] and short["fields"] == ["observatory.LS240_1.ch0"]
    assert full["t"] == short["t"] and answer["data"][f"{LS1}.ch0"] == answer["data"]["observatory.LS240_1.ch0"]
    assert "nope" not in answer["data"]
    assert len(full["t"]) <= 200 and max(answer["data"][f"{LS1}.ch0"]) == SPIKE
    answer = client.call(wamp.get_data_uri("g3_reader"), "observatory.LS240_1.ch0", END - 1300, END - 1200, 10)
    t = answer["timeline"]["observatory.LS240_1.ch0"]["t"]
    assert most_per_slot(t, 10) <= 4 and max(answer["data"]["observatory.LS240_1.ch0"]) == SPIKE


def test_get_fields_follows_fields_that_come_and_go_with_files(g3_env):
    """The field catalogue: a field added in a later file is listed from that file on, and a
    field whose only file is deleted leaves the list (the catalogue is made again from the rest)."""
    old = Provider(LS1, (Block("fast", ("ch0",), 2.0),))
    new = Provider(LS1, (Block("fast", ("ch0",), 2.0), Block("extra", ("heater2",), 1.0)))
    folder = archive_dir(g3_env)
    Archive([old], END - 1800, END - 600, file_seconds=600).write(folder)
    later = Archive([new], END - 600, END, file_seconds=600).write(folder)
    index = make_index(g3_env)
    Scanner(index, folder).scan_once()
    reader = Reader(index, 16)
    assert set(reader.fields(END - 1800, END - 900)[0]) == {f"{LS1}.ch0"}
    assert set(reader.fields(END - 1800, END)[0]) == {f"{LS1}.ch0", f"{LS1}.heater2"}
    assert set(reader.fields(END - 300, END)[0]) == {f"{LS1}.ch0", f"{LS1}.heater2"}
    for path in later:
        path.unlink()
    Scanner(index, folder).scan_once()
    assert set(reader.fields(END - 1800, END)[0]) == {f"{LS1}.ch0"}
    assert reader.fields(END - 300, END) == ({}, {})


def test_get_fields_of_an_upgraded_version_4_index_are_those_it_had(scanned):
    """Upgrading to version 5 fills the catalogue from the fields already indexed."""
    _, index = scanned
    window = (END - 1800, END)
    before = Reader(index, 16).fields(*window)

    def back_to_version_4(cur):
        cur.execute("DROP TABLE catalogue")
        cur.execute("UPDATE schema_version SET version = 4")
    index.run(back_to_version_4)
    assert "upgraded schema version 4" in index.ensure_schema()
    assert Reader(index, 16).fields(*window) == before and before[0]


def test_g3_reader_survives_a_worker_process_that_dies(g3_env, procs, client):
    """get_data runs in worker processes: one killed (OOM killer, a crash) is replaced, and the
    requests it held or that come after it are answered as before, by the same reader."""
    spiky_archive().write(archive_dir(g3_env))
    procs.start("g3-file-scanner", "--once", env=g3_env).wait_for("pass done")
    procs.start("hub").wait_for("hub ready")
    node = procs.start("g3-reader", env=dict(g3_env, G3_READER_PROCESSES="2"))
    node.wait_for("added data node g3_reader")
    ask = lambda: client.call(wamp.get_data_uri("g3_reader"), [f"{LS1}.ch0"], END - 1800, END, 10.0)  # noqa: E731
    before = ask()
    assert max(before["data"][f"{LS1}.ch0"]) == SPIKE
    workers = _children(node.proc.pid)
    assert len(workers) >= 2  # the pool's worker processes (and spawn's resource tracker)
    for pid in workers:
        os.kill(pid, 9)
    for _ in range(5):
        assert ask() == before
    node.wait_for("a g3-reader worker process died")
    assert node.proc.poll() is None and len(_children(node.proc.pid)) >= 2
    # what a worker says reaches the reader's log: a file cut short since it was indexed
    for path in archive_dir(g3_env).rglob("*.g3"):
        os.truncate(path, 100)
    ask()
    node.wait_for("scanner reads the file again")


def _children(pid: int) -> list:
    """The processes ``pid`` started, from whichever of its threads."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return found
