"""g3-file-scanner on real files, with the index on real MariaDB and on SQLite."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pymysql

from sisock.config import load
from sisock.g3 import parallel, schema
from sisock.g3.index import open_index
from sisock.g3.scanner import Scanner
from sisock.g3.writer import Archive
from tests.g3_support import (END, PROVIDERS, archive_dir, assert_reads_back, dump,
                              make_index, small_archive)
from tests.support import BIN, base_environment, wait_until


def run_scanner(env, *args, timeout=60):
    return subprocess.run([str(BIN / "sisock"), "g3-file-scanner", *args], env=dict(base_environment(), **env),
                          capture_output=True, text=True, timeout=timeout)


def test_scan_once_then_every_sample_reads_back(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    result = run_scanner(g3_env, "--once")
    assert result.returncode == 0, result.stderr
    assert "created schema version" in result.stderr
    assert f"pass done: {len(paths)} files, {len(paths)} read" in result.stderr
    index = make_index(g3_env)
    content = dump(index)
    assert [row[0] for row in content["files"]] == sorted(str(p) for p in paths)
    assert {row[3] for row in content["files"]} == {"ok"}
    assert len(content["feeds"]) == len(paths) * len(PROVIDERS)
    assert content["description"] == sorted((p.description,) for p in PROVIDERS)
    assert_reads_back(index, archive, archive.start, archive.end)


def test_rescan_of_unchanged_archive_reads_no_file(g3_env):
    archive_path = archive_dir(g3_env)
    small_archive().write(archive_path)
    index = make_index(g3_env)
    Scanner(index, archive_path).scan_once()
    before = dump(index)
    stats = Scanner(index, archive_path).scan_once()
    assert (stats.files, stats.read, stats.bytes, stats.removed) == (3, 0, 0, 0)
    assert dump(index) == before


def test_appended_frames_appear_after_next_pass(g3_env):
    archive = small_archive(end=END - 300)
    paths = archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    scanner = Scanner(index, archive_dir(g3_env))
    scanner.scan_once()
    newest = paths[-1]
    size_before = newest.stat().st_size
    grown = Archive(archive.providers, archive.start, END, file_seconds=600, gaps=archive.gaps)
    grown.write_file(newest, END - 300, END, append=True)
    stats = scanner.scan_once()
    assert stats.read == 1
    assert stats.bytes == newest.stat().st_size - size_before
    assert_reads_back(index, grown, END - 400, END)
    assert_reads_back(index, grown, grown.start, grown.end)


def test_truncated_last_frame_waits_for_the_next_pass(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    newest = paths[-1]
    whole = newest.read_bytes()
    newest.write_bytes(whole[:-100])
    index = make_index(g3_env)
    scanner = Scanner(index, archive_dir(g3_env))
    scanner.scan_once()
    row = index.files()[str(newest)]
    assert row.status == "ok" and row.scanned_to < len(whole) - 100
    assert_reads_back(index, archive, archive.start, END - 60)  # the last minute is the cut frame
    assert scanner.scan_once().read == 0
    newest.write_bytes(whole)
    assert scanner.scan_once().read == 1
    assert index.files()[str(newest)].scanned_to == len(whole)
    assert_reads_back(index, archive, archive.start, archive.end)


def test_corrupt_file_is_recorded_bad_and_skipped_until_it_changes(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    good = paths[0].read_bytes()
    broken = bytearray(good)
    broken[2000:2040] = b"\xff" * 40
    paths[0].write_bytes(bytes(broken))
    garbage = archive_dir(g3_env) / "garbage.g3"
    garbage.write_bytes(b"not a g3 file " * 100)
    index = make_index(g3_env)
    scanner = Scanner(index, archive_dir(g3_env))
    stats = scanner.scan_once()
    assert stats.bad == 2
    rows = index.files()
    for path in (paths[0], garbage):
        assert rows[str(path)].status == "bad"
        assert "unreadable frame at byte" in rows[str(path)].error
    assert_reads_back(index, archive, archive.start + 600, archive.end)  # the other files still serve
    assert scanner.scan_once().read == 0
    paths[0].write_bytes(good)
    assert scanner.scan_once().read == 1
    assert index.files()[str(paths[0])].status == "ok"
    assert_reads_back(index, archive, archive.start, archive.end)


class Lines:
    """Collects the scanner's log events as text (the real log goes to the process's stderr)."""

    def __init__(self):
        self.lines = []

    def info(self, text, **kw):
        self.lines.append(text.format(**kw))

    warn = info


def test_a_pass_with_much_to_read_uses_every_core_and_writes_what_one_process_does(g3_env, tmp_path, monkeypatch):
    archive = small_archive()
    archive.write(archive_dir(g3_env))
    serial = make_index({"SQLITE_PATH": str(tmp_path / "serial.sqlite")})
    Scanner(serial, archive_dir(g3_env)).scan_once()
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 0)
    started = []
    real = parallel.ProcessPoolExecutor
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda *a, **k: started.append(a) or real(*a, **k))
    index = make_index(g3_env)
    stats = Scanner(index, archive_dir(g3_env)).scan_once()
    assert started and started[0][0] == parallel.cores() >= 2  # the machines here have two cores or more
    assert stats.read == 3 and dump(index) == dump(serial)
    assert_reads_back(index, archive, archive.start, archive.end)


def test_a_long_pass_reports_progress(g3_env):
    small_archive().write(archive_dir(g3_env))
    scanner = Scanner(make_index(g3_env), archive_dir(g3_env), progress_every=0)
    scanner.log = Lines()
    scanner.scan_once()
    assert scanner.log.lines[-1].startswith("scanning: 3/3 files read, ")
    assert "MB/s" in scanner.log.lines[-1] and "frames/s" in scanner.log.lines[-1]


def test_deleted_file_leaves_the_index(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    scanner = Scanner(index, archive_dir(g3_env))
    scanner.scan_once()
    paths[0].unlink()
    assert scanner.scan_once().removed == 1
    content = dump(index)
    assert str(paths[0]) not in [row[0] for row in content["files"]]
    assert all(row[0] != str(paths[0]) for row in content["frames"] + content["fields"])
    assert index.fields_in(archive.start, archive.start + 600) == []
    for path in paths[1:]:
        path.unlink()
    scanner.scan_once()
    assert all(rows == [] for rows in dump(index).values())  # summaries included


def index_file_count(env):
    index = open_index(load(env))  # no schema creation here: the scanner under test makes it
    try:
        return index.run(lambda cur: cur.one("SELECT COUNT(*) FROM files"))[0]
    except (sqlite3.Error, pymysql.err.Error):
        return 0
    finally:
        index.close()


def test_killed_scanner_restarts_consistently(g3_env, tmp_path):
    archive = Archive(PROVIDERS, END - 5 * 3600, END, file_seconds=30, frame_seconds=10)
    total = len(archive.write(archive_dir(g3_env)))
    process = subprocess.Popen([str(BIN / "sisock"), "g3-file-scanner", "--once"],
                               env=dict(base_environment(), **g3_env), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_until(lambda: index_file_count(g3_env) >= 1 or process.poll() is not None, 60, "the first files indexed",
               interval=0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    partial = index_file_count(g3_env)
    assert 0 < partial < total, "the scanner should have been killed mid-pass"
    result = run_scanner(g3_env, "--once")
    assert result.returncode == 0, result.stderr
    fresh_env = dict(g3_env, SQLITE_PATH=str(tmp_path / "fresh.sqlite"))
    fresh_env.pop("SQL_HOST", None)
    assert run_scanner(fresh_env, "--once").returncode == 0
    assert dump(make_index(g3_env)) == dump(make_index(fresh_env))


def test_seed_schema_is_upgraded(g3_env):
    small_archive().write(archive_dir(g3_env))
    index = open_index(load(g3_env))

    def seed(cur):
        cur.execute("CREATE TABLE feeds (id INTEGER PRIMARY KEY, filename VARCHAR(255), path VARCHAR(255), "
                    "prov_id INTEGER, description VARCHAR(255), scanned DATETIME(6))")
        cur.execute("CREATE TABLE fields (feed_id INTEGER, field VARCHAR(255), `start` DATETIME(6), "
                    "`end` DATETIME(6))")
        cur.execute("CREATE TABLE description (description VARCHAR(255))")
        cur.execute("INSERT INTO feeds (id, filename, path, prov_id, description) VALUES (1, 'old.g3', '/x', 0, 'd')")
    index.run(seed)
    result = run_scanner(g3_env, "--once")
    assert result.returncode == 0, result.stderr
    assert "upgraded the seed schema" in result.stderr
    content = dump(make_index(g3_env))
    assert "old.g3" not in [row[0] for row in content["feeds"]]
    assert len(content["feeds"]) == 3 * len(PROVIDERS)
    assert f"schema version {schema.CURRENT} is current" in run_scanner(g3_env, "--once").stderr


def test_mysql_connection_is_made_again_after_the_server_drops_it(g3_env):
    if "SQL_HOST" not in g3_env:
        return
    index = make_index(g3_env)
    connection_id = index.run(lambda cur: cur.one("SELECT CONNECTION_ID()"))[0]
    with pymysql.connect(host="127.0.0.1", user="root", password="") as admin, admin.cursor() as cur:
        cur.execute("KILL %s", (connection_id,))
    time.sleep(0.2)
    assert index.run(lambda cur: cur.one("SELECT CONNECTION_ID()"))[0] != connection_id
    assert index.files() == {}


def test_missing_data_directory_is_a_clear_error(g3_env, tmp_path):
    env = dict(g3_env, DATA_DIRECTORY=str(tmp_path / "nowhere"))
    result = run_scanner(env, "--once")
    assert result.returncode == 2
    assert "DATA_DIRECTORY" in result.stderr and "not a directory" in result.stderr


def test_scanner_keeps_scanning_every_interval(g3_env):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    moved = paths[-1].with_suffix(".later")
    shutil.move(paths[-1], moved)
    process = subprocess.Popen([str(BIN / "sisock"), "g3-file-scanner"], text=True, stderr=subprocess.PIPE,
                               env=dict(base_environment(), **g3_env, SCAN_INTERVAL="0.5"))
    try:
        wait_until(lambda: index_file_count(g3_env) == 2, 30, "the first pass")
        shutil.move(moved, paths[-1])
        wait_until(lambda: index_file_count(g3_env) == 3, 30, "the new file indexed by a later pass")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    assert os.path.exists(paths[-1])


def test_unlistable_folder_or_unmounted_tree_keeps_the_index(g3_env, monkeypatch):
    archive = small_archive()
    paths = archive.write(archive_dir(g3_env))
    index = make_index(g3_env)
    scanner = Scanner(index, archive_dir(g3_env))
    scanner.scan_once()
    before = dump(index)
    folder, real_scandir = str(paths[0].parent), os.scandir

    def scandir(path):  # tests run as root, who can list any folder: refuse this one as a stale mount would
        if str(path) == folder:
            raise PermissionError(13, "Permission denied", folder)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert scanner.scan_once().removed == 0
    monkeypatch.undo()
    assert dump(index) == before
    hidden = archive_dir(g3_env).with_name("moved-away")
    archive_dir(g3_env).rename(hidden)
    archive_dir(g3_env).mkdir()  # an empty mount point
    assert scanner.scan_once().removed == 0
    assert dump(index) == before
