"""g3-file-scanner follows a growing archive through inotify, long before its periodic pass."""
from __future__ import annotations

from sisock.g3.writer import HKFileWriter
from tests.g3_support import PROVIDERS, archive_dir, make_index, small_archive
from tests.support import Processes, wait_until


def newest_indexed(index, description: str) -> float:
    """The end of the newest frame the index holds for a provider (0 when none)."""
    rows = index.run(lambda cur: cur.all("SELECT MAX(fr.t_end) FROM frames fr JOIN feeds fe ON fe.id = fr.feed_id "
                                         "WHERE fe.description = ?", (description,)))
    return float(rows[0][0] or 0.0)


def write_frames(writer: HKFileWriter, t0: float, t1: float, frame: float = 10.0) -> None:
    """Frames of every provider over [t0, t1), each pushed to the file as the aggregator does."""
    a = t0
    while a < t1:
        for prov_id in range(len(PROVIDERS)):
            writer.data(prov_id, a, a + frame)
        writer.flush()
        a += frame


def test_growing_file_and_new_folder_are_indexed_without_waiting_for_a_pass(g3_env):
    archive = small_archive()
    top = archive_dir(g3_env)
    start = archive.start
    first = archive.file_path(top, start)
    writer = HKFileWriter(first, PROVIDERS, start)
    write_frames(writer, start, start + 30)
    procs = Processes({})
    try:
        # a pass every hour: anything indexed within the test came through the watch
        scanner = procs.start("g3-file-scanner", env=dict(g3_env, SCAN_INTERVAL="3600"))
        scanner.wait_for("watching 2 folders")
        scanner.wait_for("pass done")
        index = make_index(g3_env)
        description = PROVIDERS[0].description
        assert newest_indexed(index, description) < start + 30

        write_frames(writer, start + 30, start + 60)
        wait_until(lambda: newest_indexed(index, description) >= start + 59, 30, "the appended frames indexed")

        # the aggregator starts a file in a folder that did not exist: it is watched as it appears
        writer.close()
        later = start + 200_000  # another ctime folder
        second = archive.file_path(top, later)
        assert not second.parent.exists()
        writer = HKFileWriter(second, PROVIDERS, later)
        write_frames(writer, later, later + 20)
        wait_until(lambda: newest_indexed(index, description) >= later + 19, 30, "the new folder's file indexed")
        write_frames(writer, later + 20, later + 40)
        wait_until(lambda: newest_indexed(index, description) >= later + 39, 30, "its growth indexed")
        writer.close()
        assert scanner.output.count("pass done") == 1
        index.close()
    finally:
        procs.stop_all()
