"""The archive path loses nothing and needs no hand: damaged files, half-made schemas,
rewritten files, restarted demos and lost COMMIT replies (real MariaDB and SQLite)."""
from __future__ import annotations

import random
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from autobahn.wamp.exception import ApplicationError

from sisock import demo, wamp
from sisock.config import load
from sisock.g3 import schema
from sisock.g3.index import open_index
from sisock.g3.reader import Reader
from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive
from tests.g3_support import END, PROVIDERS, archive_dir, assert_reads_back, dump, make_index, small_archive
from tests.mysql_proxy import CommitReplyLoser
from tests.support import BIN, Process, base_environment


def frames_of(index, path: Path) -> set:
    """``(prov_id, byte_offset, nbytes, t_start, t_end)`` of every indexed data frame of one file."""
    return {row[1:] for row in dump(index)["frames"] if row[0] == str(path)}


# -- damaged files ----------------------------------------------------------------------
def test_corrupted_length_field_costs_no_memory_and_is_recorded_bad(g3_env):
    """The issue's reproduction: four 0xff bytes in a length field near the start of a file."""
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    victim = paths[0]
    data = bytearray(victim.read_bytes())
    data[32:36] = b"\xff\xff\xff\xff"
    victim.write_bytes(bytes(data))
    # a scanner process of its own, so that its peak memory can be read
    script = ("import resource, sys; from sisock.cli import main\n"
              "try:\n    main(['g3-file-scanner', '--once'])\nexcept SystemExit:\n    pass\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", script], env=dict(base_environment(), **g3_env),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout.split()[-1]) / 1024
    print(f"scanner peak RSS on a file whose length field claims 4 GB: {peak_mb:.0f} MB "
          f"(file {len(data) / 1e6:.2f} MB)")
    assert peak_mb < 600, "the declared length must not be allocated"
    index = make_index(g3_env)
    row = index.files()[str(victim)]
    assert row.status == "bad" and "byte 0" in row.error, row.error
    assert f"bad file {victim}" in result.stderr
    # every frame after the damaged one is still served
    assert frames_of(index, victim), "the frames after the damage must be indexed"
    assert_reads_back(index, archive, archive.start, archive.end)


def test_cut_tail_of_a_file_no_longer_written_is_recorded_bad(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    newest = paths[-1]
    whole = newest.read_bytes()
    newest.write_bytes(whole[:-100])
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    assert index.files()[str(newest)].status == "ok"  # may still be written: wait
    later = Archive(PROVIDERS, END, END + 600, file_seconds=600)
    later.write(archive_dir(g3_env))  # a newer file: the aggregator has moved on
    stats = Scanner(index, archive_dir(g3_env)).scan_once()
    row = index.files()[str(newest)]
    assert stats.bad == 1 and row.status == "bad"
    assert "no longer written" in row.error
    assert_reads_back(index, archive, archive.start, END - 60)  # every whole frame still served


def test_cut_tail_becomes_bad_after_the_grace_period(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    paths[-1].write_bytes(paths[-1].read_bytes()[:-100])
    for path in paths[:-1]:
        path.unlink()
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env), growth_grace=3600).scan_once()
    assert index.files()[str(paths[-1])].status == "ok"
    Scanner(index, archive_dir(g3_env), growth_grace=0).scan_once()
    assert index.files()[str(paths[-1])].status == "bad"


@pytest.fixture
def sqlite_env(tmp_path):
    return {"DATA_DIRECTORY": str(tmp_path / "archive"), "SQLITE_PATH": str(tmp_path / "index.sqlite")}


def test_random_corruptions_keep_every_frame_before_the_damage(sqlite_env, tmp_path):
    """Property: whatever bytes are damaged, the scanner does not fail, keeps every frame that
    ends before the damage, indexes no frame that is not one of the original ones, and the
    reader returns exactly the samples of the frames it kept."""
    archive = Archive(PROVIDERS, END - 600, END, file_seconds=600, frame_seconds=60)
    path = archive.write(archive_dir(sqlite_env))[0]
    good = path.read_bytes()
    clean = make_index(dict(sqlite_env, SQLITE_PATH=str(tmp_path / "clean.sqlite")))
    Scanner(clean, archive_dir(sqlite_env)).scan_once()
    original = frames_of(clean, path)
    rng = random.Random(20261125)
    for case in range(40):
        data = bytearray(good)
        at = rng.randrange(len(data))
        length = rng.choice([1, 1, 4, 8, 64, 2000])
        data[at:at + length] = bytes(rng.randrange(256) for _ in range(min(length, len(data) - at)))
        if data == good:
            continue
        path.write_bytes(bytes(data))
        env = dict(sqlite_env, SQLITE_PATH=str(tmp_path / f"case{case}.sqlite"))
        index = make_index(env)
        Scanner(index, archive_dir(env), growth_grace=0).scan_once()
        kept = frames_of(index, path)
        before = {f for f in original if f[1] + f[2] <= at}
        assert before <= kept, f"case {case}: damage at {at} lost frames before it"
        assert kept <= original, f"case {case}: a frame that was never written was indexed"
        row = index.files()[str(path)]
        assert row.status == ("ok" if kept == original else "bad"), (case, row)
        reader = Reader(index, 4)
        for prov_id, provider in enumerate(PROVIDERS):
            windows = sorted((f[3], f[4]) for f in kept if f[0] == prov_id)
            for t0, t1 in windows:
                block = provider.blocks[0]
                name = f"{provider.description}.{block.fields[0]}"
                t, v = archive.samples(provider.description, block.fields[0], t0, t1 + 1e-9)
                got = reader.data([name], t0, t1 + 1e-9)
                if not len(t):
                    continue
                gt, cols = got[f"{provider.description}.{block.name}"]
                np.testing.assert_array_equal(gt, t)
                np.testing.assert_array_equal(cols[name], v)
        index.close()


# -- rewritten files --------------------------------------------------------------------
def test_file_rewritten_in_place_and_grown_is_read_again_from_the_start(g3_env):
    first = small_archive()
    paths = first.write(archive_dir(g3_env))
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    # the same name now holds other data, longer than before (a restarted demo, a re-copied file)
    other = Archive(PROVIDERS, END - 2400, END - 1200, file_seconds=1200, frame_seconds=30)
    other.write_file(paths[0], END - 2400, END - 1200)
    assert paths[0].stat().st_size > index.files()[str(paths[0])].size
    Scanner(index, archive_dir(g3_env)).scan_once()
    fresh = make_index(dict(g3_env, SQL_HOST="", SQLITE_PATH=str(archive_dir(g3_env).parent / "fresh.sqlite")))
    Scanner(fresh, archive_dir(g3_env)).scan_once()
    assert frames_of(index, paths[0]) == frames_of(fresh, paths[0])
    assert_reads_back(index, other, END - 2400, END - 1200)


def test_demo_restarted_serves_its_whole_example_range(tmp_path):
    for run in range(3):
        env = demo._g3_env(tmp_path)
        index = open_index(load(dict(env, SQLITE_PATH=str(tmp_path / "g3-index.sqlite"))))
        index.ensure_schema()
        stats = Scanner(index, Path(env["DATA_DIRECTORY"])).scan_once()
        assert stats.bad == 0, f"run {run}"
        reader = Reader(index, 16)
        name = "observatory.LSA00.feeds.temperatures.ch0_0p2hz"
        end = time.time()
        t, _ = next(iter(reader.data([name], end - 23 * 3600, end).values()))
        assert t[0] < end - 22.9 * 3600 and t[-1] > end - 7200, f"run {run}: {t[0]}..{t[-1]}"
        index.close()


# -- the schema -------------------------------------------------------------------------
def _schema_shape(index) -> dict:
    def work(cur):
        names = sorted(schema.tables(cur, index.dialect))
        return {t: (sorted(schema._columns(cur, index.dialect, t)), sorted(schema._indexes(cur, index.dialect, t)))
                for t in names}
    return index.run(work)


class Killed(Exception):
    pass


@contextmanager
def numbered_index(g3_env, number: int):
    """An index of its own (database or file ``number``) on the backend of ``g3_env``, dropped after."""
    env = dict(g3_env)
    if "SQL_HOST" in env:
        env["SQL_DB"] = f"{g3_env['SQL_DB']}_{number}"
    else:
        env["SQLITE_PATH"] = f"{g3_env['SQLITE_PATH']}.{number}"
    index = open_index(load(env))
    try:
        yield index
    finally:
        if "SQL_HOST" in env:
            index.run(lambda cur: cur.execute(f"DROP DATABASE `{env['SQL_DB']}`"))
        index.close()


def stop_part_way(index, after: int):
    """Make or upgrade the schema, stopping (as a killed process would) after ``after`` actions."""
    try:
        schema.ensure(index, _killer(index, after))
    except Killed:
        pass


def _killer(index, after: int):
    done = []

    def run_action(action):
        if len(done) == after:
            raise Killed()
        index.run(lambda cur: action(cur, index.dialect))
        done.append(action)
    return run_action


def test_schema_creation_killed_at_every_step_is_completed_by_the_next_start(g3_env):
    complete = None
    steps = sum(len(actions) + 1 for _, actions in schema.STEPS)
    for after in range(steps + 1):
        with numbered_index(g3_env, after) as index:
            stop_part_way(index, after)
            assert index.ensure_schema().startswith(("created", "upgraded", "schema version"))
            assert schema.version(index) == schema.CURRENT
            shape = _schema_shape(index)
            complete = complete or shape
            assert shape == complete, f"killed after {after} actions"


def test_schema_version_table_without_its_row_is_completed(g3_env):
    """The issue's reproduction: a start killed right after creating schema_version."""
    small_archive().write(archive_dir(g3_env))
    index = open_index(load(g3_env))
    index.run(lambda cur: cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
    result = subprocess.run([str(BIN / "sisock"), "g3-file-scanner", "--once"], env=dict(base_environment(), **g3_env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pass failed" not in result.stderr
    assert_reads_back(make_index(g3_env), small_archive(), END - 1800, END)


def test_upgrade_from_version_2_killed_at_every_step_keeps_the_frames(g3_env):
    v2_actions = len(schema.STEPS[0][1]) + 1
    later_actions = sum(len(actions) + 1 for _, actions in schema.STEPS[1:])
    for after in range(later_actions + 1):
        with numbered_index(g3_env, after) as index:
            stop_part_way(index, v2_actions)
            assert schema.version(index) == 2

            def fill(cur):
                cur.execute("INSERT INTO files (path, size, mtime_ns, scanned_to, status) "
                            "VALUES ('/a.g3', 10, 1, 10, 'ok')")
                cur.execute("INSERT INTO feeds (filename, path, prov_id, description, file_id) "
                            "VALUES ('a.g3', '/', 0, 'observatory.x.feeds.y', 1)")
                for offset in (0, 100, 200):
                    cur.execute("INSERT INTO frames (feed_id, byte_offset, nbytes, t_start, t_end) "
                                "VALUES (1, ?, 100, ?, ?)", (offset, offset, offset + 1))
            index.run(fill)
            stop_part_way(index, after)
            assert index.ensure_schema().endswith((f" to {schema.CURRENT}",
                                                   f"schema version {schema.CURRENT} is current"))
            assert schema.version(index) == schema.CURRENT
            frames = index.run(lambda cur: cur.all("SELECT byte_offset FROM frames ORDER BY byte_offset"))
            assert frames == [(0,), (100,), (200,)], f"killed after {after} actions"


# -- a lost COMMIT reply ----------------------------------------------------------------
def _grow_newest(env) -> Archive:
    archive = small_archive(end=END - 300)
    paths = archive.write(archive_dir(env))
    return archive, paths


def _assert_no_duplicate_time(index, archive, t0, t1):
    reader = Reader(index, 16)
    for provider in archive.providers:
        block = provider.blocks[0]
        name = f"{provider.description}.{block.fields[0]}"
        for t, _ in reader.data([name], t0, t1).values():
            assert len(np.unique(t)) == len(t), f"{name}: a sample returned twice"


def test_lost_commit_reply_indexes_no_frame_twice(g3_env):
    if "SQL_HOST" not in g3_env:
        pytest.skip("a COMMIT reply is lost on a network connection; SQLite has none")
    proxy = CommitReplyLoser(int(g3_env["SQL_PORT"])).start()
    try:
        env = dict(g3_env, SQL_PORT=str(proxy.port))
        archive, paths = _grow_newest(env)
        index = make_index(env)
        scanner = Scanner(index, archive_dir(env))
        scanner.scan_once()
        grown = Archive(archive.providers, archive.start, END, file_seconds=600, gaps=archive.gaps)
        grown.write_file(paths[-1], END - 300, END, append=True)
        proxy.arm("INSERT INTO frames")
        stats = scanner.scan_once()
        assert proxy.fired.is_set(), "the proxy should have lost a COMMIT reply"
        assert stats.read == 1
        fresh = make_index(dict(g3_env, SQL_HOST="", SQLITE_PATH=str(archive_dir(env).parent / "fresh.sqlite")))
        Scanner(fresh, archive_dir(env)).scan_once()
        assert dump(index)["frames"] == dump(fresh)["frames"]
        assert_reads_back(index, grown, grown.start, grown.end)
        _assert_no_duplicate_time(index, grown, grown.start, grown.end)
    finally:
        proxy.close()


def test_a_repeated_store_of_the_same_scan_changes_nothing(g3_env):
    """What the retry after a lost reply does, on both backends: the second write is a no-op."""
    archive, paths = _grow_newest(g3_env)
    index = make_index(g3_env)
    Scanner(index, archive_dir(g3_env)).scan_once()
    grown = Archive(archive.providers, archive.start, END, file_seconds=600, gaps=archive.gaps)
    grown.write_file(paths[-1], END - 300, END, append=True)
    stored = []
    real = index.store_file

    def twice(*args):
        real(*args)
        index.refresh_summaries()  # as the pass's end does, so the two dumps compare like for like
        stored.append(dump(index))
        real(*args)  # the retry: the row already holds this scan's result

    index.store_file = twice
    Scanner(index, archive_dir(g3_env)).scan_once()
    assert dump(index) == stored[0]
    _assert_no_duplicate_time(index, grown, grown.start, grown.end)


def test_the_index_refuses_a_frame_twice(g3_env):
    index = make_index(g3_env)
    small_archive().write(archive_dir(g3_env))
    Scanner(index, archive_dir(g3_env)).scan_once()
    row = index.run(lambda cur: cur.one("SELECT feed_id, byte_offset, nbytes, t_start, t_end FROM frames"))
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        index.run(lambda cur: cur.execute(
            "INSERT INTO frames (feed_id, byte_offset, nbytes, t_start, t_end) VALUES (?, ?, ?, ?, ?)", row))



# -- an index the reader cannot open ----------------------------------------------------
@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_an_index_on_a_read_only_folder_is_named_with_its_cause_once_a_minute(g3_env, procs, client):
    """A read-only index folder (a read-only mount, a unit's ProtectSystem=strict without
    ReadWritePaths=) fails every request with the file and the cause in one line, which the
    reader logs once a minute, not at every request."""
    small_archive().write(archive_dir(g3_env))
    procs.start("g3-file-scanner", "--once", env=g3_env).wait_for("pass done")
    procs.start("hub").wait_for("hub ready")
    folder = Path(g3_env["SQLITE_PATH"]).parent
    command = (f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
               f"exec {BIN / 'sisock'} g3-reader")
    reader = Process(["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
                     dict(procs.env, **g3_env, G3_READER_PROCESSES="1"), "g3-reader (read-only index)")
    procs.running.append(reader)
    reader.wait_for("added data node g3_reader")
    for _ in range(5):
        with pytest.raises(ApplicationError) as failed:
            client.call(wamp.get_fields_uri("g3_reader"), 1, 0)
        assert f"cannot open the index {g3_env['SQLITE_PATH']}" in failed.value.args[0]
        assert "read-only file system" in failed.value.args[0]
    lines = [line for line in reader.lines if "cannot open the index" in line and "warm-up not done" not in line]
    assert len(lines) == 1 and " error: " in lines[0], "\n".join(lines)
